-- V10: bearer tokens from an OIDC issuer name their tenant by code; the runtime role
-- cannot read `tenants`, so it resolves the code through this one function.
CREATE FUNCTION tenant_id_by_code(p_code text) RETURNS bigint
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = wms, pg_temp
    AS $$ SELECT id FROM tenants WHERE code = p_code $$;

REVOKE ALL ON FUNCTION tenant_id_by_code(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION tenant_id_by_code(text) TO wms_app;
