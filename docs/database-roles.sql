-- Run once as an administrator where the migrating login may not create roles
-- (for example a managed PostgreSQL whose master user lacks the right to create
-- BYPASSRLS roles). Replace wms_login with the login of DATABASE_URL.
CREATE ROLE wms_owner NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE wms_app   NOLOGIN NOSUPERUSER NOBYPASSRLS;
CREATE ROLE wms_admin NOLOGIN NOSUPERUSER BYPASSRLS;
GRANT wms_owner, wms_app, wms_admin TO wms_login;
CREATE SCHEMA IF NOT EXISTS wms AUTHORIZATION wms_owner;
GRANT USAGE ON SCHEMA wms TO wms_app, wms_admin;
