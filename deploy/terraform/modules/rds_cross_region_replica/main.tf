# The N. Virginia standby: a cross-Region read replica of the São Paulo primary, named
# by its ARN (a cross-Region source must be an ARN, not an identifier), encrypted with a
# key of this Region, Multi-AZ so that once promoted it is as available as the primary.
#
# Promotion (docs/runbooks/region-failover.md): set `promoted = true` and apply. Removing
# replicate_source_db is how the AWS provider promotes a replica; the same apply turns on
# the 30-day backups that a PostgreSQL replica cannot have (RDS does not back up
# PostgreSQL read replicas; the primary's backups are replicated here instead, below).

data "aws_caller_identity" "current" {}

resource "aws_kms_key" "rds" {
  description             = "${var.identifier} storage (cross-Region replica)"
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

resource "aws_db_parameter_group" "this" {
  name_prefix = "${var.identifier}-pg16-"
  family      = "postgres16"
  description = "WMS PostgreSQL 16 (cross-Region replica)"
  tags        = var.tags

  parameter {
    name         = "shared_preload_libraries"
    value        = "pg_stat_statements"
    apply_method = "pending-reboot"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "500"
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

resource "aws_db_instance" "replica" {
  #checkov:skip=CKV_AWS_133:RDS cannot back up a PostgreSQL read replica; backups turn on (30 days) in the same apply that promotes it, and the primary's automated backups are replicated to this Region meanwhile.
  identifier          = var.identifier
  replicate_source_db = var.promoted ? null : var.source_db_arn
  instance_class      = var.instance_class

  storage_encrypted     = true
  kms_key_id            = aws_kms_key.rds.arn
  storage_type          = "gp3"
  max_allocated_storage = var.max_allocated_storage_gb

  multi_az               = true
  publicly_accessible    = false
  db_subnet_group_name   = aws_db_subnet_group.this.name
  vpc_security_group_ids = [aws_security_group.db.id]
  parameter_group_name   = aws_db_parameter_group.this.name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  backup_retention_period   = var.promoted ? 30 : 0
  backup_window             = "03:00-04:00"
  maintenance_window        = "sun:04:30-sun:05:30"
  copy_tags_to_snapshot     = true
  delete_automated_backups  = false
  skip_final_snapshot       = false
  final_snapshot_identifier = "${var.identifier}-final-${random_id.final_snapshot.hex}"
  deletion_protection       = true

  iam_database_authentication_enabled = true
  auto_minor_version_upgrade          = true

  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]
  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.monitoring.arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.rds.arn
  performance_insights_retention_period = 7

  tags = merge(var.tags, { Role = var.promoted ? "primary" : "cross-region-replica" })

  lifecycle {
    precondition {
      condition     = can(regex("^arn:aws:rds:[a-z0-9-]+:[0-9]{12}:db:", var.source_db_arn))
      error_message = "source_db_arn is the ARN of the primary DB instance (a cross-Region source must be an ARN)."
    }
  }
}

# The primary's automated backups (PITR, 30 days) copied to this Region, so a restore is
# possible here even if São Paulo is lost before the replica is promoted.
resource "aws_db_instance_automated_backups_replication" "primary" {
  count                  = var.promoted ? 0 : 1
  source_db_instance_arn = var.source_db_arn
  kms_key_id             = aws_kms_key.rds.arn
  retention_period       = 30
}
