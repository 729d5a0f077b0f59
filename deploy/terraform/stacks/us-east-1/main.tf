# N. Virginia: the warm standby of São Paulo (USA backup). The database is a cross-Region
# read replica of the São Paulo primary, named by ARN; the cluster runs a minimal
# footprint that scales out on failover (docs/runbooks/region-failover.md). The Route 53
# failover records live in this stack so they can be changed while São Paulo (and its
# state) is unreachable.

locals {
  name = "wms-us-east-1"
  azs  = ["us-east-1a", "us-east-1b", "us-east-1c"]
  tags = {
    Project     = "wms"
    Environment = var.environment
    Region      = "us-east-1"
    Role        = "standby"
  }
}

provider "aws" {
  region = "us-east-1"

  default_tags {
    tags = local.tags
  }
}

module "network" {
  source     = "../../modules/network"
  name       = local.name
  cidr_block = "10.20.0.0/16"
  azs        = local.azs
  tags       = local.tags
}

module "eks" {
  source              = "../../modules/eks"
  name                = local.name
  vpc_id              = module.network.vpc_id
  subnet_ids          = module.network.private_subnet_ids
  public_access_cidrs = var.eks_public_access_cidrs
  logs_kms_key_arn    = module.network.logs_kms_key_arn
  tags                = local.tags

  node_groups = {
    api = {
      instance_types = ["m7i.xlarge", "m6i.xlarge"]
      min_size       = 3
      max_size       = 30
    }
    worker = {
      instance_types = ["m7i.large", "m6i.large"]
      min_size       = 3
      max_size       = 9
    }
  }
}

module "database" {
  source                     = "../../modules/rds_cross_region_replica"
  identifier                 = local.name
  source_db_arn              = var.primary_db_arn
  promoted                   = var.promoted
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.database_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  tags                       = local.tags
}

module "redis" {
  source                     = "../../modules/redis"
  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  tags                       = local.tags
}

module "kafka" {
  source                     = "../../modules/kafka"
  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  logs_kms_key_arn           = module.network.logs_kms_key_arn
  tags                       = local.tags
}

module "backups" {
  source            = "../../modules/backup_bucket"
  bucket_name       = "${var.bucket_prefix}-wms-backups-us-east-1"
  access_log_bucket = var.access_log_bucket
  tags              = local.tags
}

module "dns" {
  source                = "../../modules/dns_failover"
  zone_id               = var.zone_id
  record_name           = var.api_record_name
  primary_health_fqdn   = var.primary_health_fqdn
  primary_lb_dns_name   = var.primary_lb_dns_name
  primary_lb_zone_id    = var.primary_lb_zone_id
  secondary_lb_dns_name = var.secondary_lb_dns_name
  secondary_lb_zone_id  = var.secondary_lb_zone_id
  tags                  = local.tags
}
