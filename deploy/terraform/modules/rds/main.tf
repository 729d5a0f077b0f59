# RDS for PostgreSQL 16: a Multi-AZ DB instance (synchronous standby in another AZ,
# automatic failover) plus a read replica for reports in a third AZ.
#
# Why a Multi-AZ DB *instance* and not a Multi-AZ DB *cluster* (docs/infrastructure.md):
# the cluster fails over faster (typically < 35 s against 60-120 s), but it lacks what the
# regional design needs: cross-Region automated backups, snapshot copy, storage
# autoscaling and PITR of a deleted database are unsupported on Multi-AZ DB clusters, and
# the N. Virginia standby is a cross-Region read replica of this instance. The instance's
# failover is within the seed's "< 2 minutes" and the app retries writes (pipeline).
#
# Seed fixes: engine 16 (minor upgrades automatic, not a fixed 16.1); no password in
# state (manage_master_user_password: the master secret lives in Secrets Manager);
# deletion_protection; a final snapshot name that is stable (random_id, not timestamp(),
# which changed every plan); the reports replica in another AZ of *this* Region.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

resource "aws_kms_key" "rds" {
  description             = "${var.identifier} storage, Performance Insights and master secret"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
  tags                    = var.tags
}

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:A KMS key policy's Resource "*" is this key alone; this statement is the AWS default key policy (delegation to the account's IAM).
  #checkov:skip=CKV_AWS_111:Same: key policy, Resource "*" is the key itself; IAM policies of the account decide who may use it.
  #checkov:skip=CKV_AWS_356:Same: in a key policy "*" cannot name any resource but the key it is attached to.
  statement {
    sid       = "AccountAdmin"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_db_subnet_group" "this" {
  name       = var.identifier
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "db" {
  name_prefix = "${var.identifier}-"
  description = "PostgreSQL from the EKS nodes only"
  vpc_id      = var.vpc_id
  tags        = var.tags

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  for_each                     = toset(var.allowed_security_group_ids)
  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from the application"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

# pg_stat_statements for the query dashboards; timeouts are set per session by the app.
resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.identifier}-pg16-"
  family      = "postgres16"
  description = "WMS PostgreSQL 16"
  tags        = var.tags

  parameter {
    name         = "shared_preload_libraries"
    value        = "pg_stat_statements"
    apply_method = "pending-reboot"
  }

  parameter {
    name  = "pg_stat_statements.track"
    value = "top"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "500"
  }

  parameter {
    name  = "log_lock_waits"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name         = "rds.force_ssl"
    value        = "1"
    apply_method = "pending-reboot"
  }

  parameter {
    name         = "max_connections"
    value        = tostring(var.max_connections)
    apply_method = "pending-reboot"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# Stable for the life of the database: the name only changes if the identifier does.
resource "random_id" "final_snapshot" {
  byte_length = 4
  keepers = {
    identifier = var.identifier
  }
}

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name_prefix        = "wms-rds-monitoring-"
  assume_role_policy = data.aws_iam_policy_document.monitoring_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "primary" {
  identifier     = var.identifier
  engine         = "postgres"
  engine_version = "16"
  instance_class = var.instance_class

  # Storage: gp3 with autoscaling up to max_allocated_storage, encrypted with our key.
  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_type          = "gp3"
  iops                  = var.iops
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.rds.arn

  # Backups: 30 days of PITR; a final snapshot with a stable name.
  backup_retention_period   = 30
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.identifier}-final-${random_id.final_snapshot.hex}"
  deletion_protection       = true

  # High availability: synchronous standby in another AZ, automatic failover.
  # (RDS places the primary and the standby; an AZ cannot be pinned on Multi-AZ.)
  multi_az            = true
  publicly_accessible = false

  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  # Authentication: the master password is generated and rotated by RDS in Secrets
  # Manager, never in Terraform state. IAM auth for operators' short-lived logins.
  db_name                             = "wms"
  username                            = "wmsadmin"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = aws_kms_key.rds.arn
  iam_database_authentication_enabled = true

  auto_minor_version_upgrade = true
  apply_immediately          = false

  # Monitoring
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.rds.arn
  performance_insights_retention_period = 7

  tags = var.tags
}

# Read replica for reports (DATABASE_REPLICA_URL), pinned to an AZ other than the
# primary's. The seed put it in us-east-1b: another Region from a São Paulo primary.
resource "aws_db_instance" "reports_replica" {
  #checkov:skip=CKV_AWS_157:The reports replica is disposable read capacity; the primary is Multi-AZ, and reports fall back to the primary if the replica is lost.
  #checkov:skip=CKV_AWS_133:RDS cannot back up a PostgreSQL read replica; the primary keeps 30 days of backups and PITR.
  identifier          = "${var.identifier}-reports"
  replicate_source_db = aws_db_instance.primary.identifier
  instance_class      = var.replica_instance_class
  availability_zone   = var.replica_availability_zone

  storage_encrypted     = true
  kms_key_id            = aws_kms_key.rds.arn
  max_allocated_storage = var.max_allocated_storage_gb

  multi_az                   = false
  publicly_accessible        = false
  vpc_security_group_ids     = [aws_security_group.db.id]
  parameter_group_name       = aws_db_parameter_group.this.name
  ca_cert_identifier         = "rds-ca-rsa2048-g1"
  backup_retention_period    = 0
  skip_final_snapshot        = true
  deletion_protection        = true
  copy_tags_to_snapshot      = true
  auto_minor_version_upgrade = true

  iam_database_authentication_enabled   = true
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.rds.arn
  performance_insights_retention_period = 7

  tags = merge(var.tags, { Role = "reports-replica" })

  lifecycle {
    precondition {
      condition     = startswith(var.replica_availability_zone, data.aws_region.current.name)
      error_message = "The reports replica is in this Region (the seed put it in us-east-1b)."
    }
    precondition {
      condition     = var.replica_availability_zone != aws_db_instance.primary.availability_zone
      error_message = "The reports replica must be in another AZ than the primary."
    }
  }
}
