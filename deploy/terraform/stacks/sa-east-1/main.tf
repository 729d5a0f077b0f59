# São Paulo: the primary Region (LATAM). Writes go here; N. Virginia follows it.

locals {
  name = "wms-sa-east-1"
  azs  = ["sa-east-1a", "sa-east-1b", "sa-east-1c"]
  tags = {
    Project     = "wms"
    Environment = var.environment
    Region      = "sa-east-1"
    Role        = "primary"
  }
}

provider "aws" {
  region = "sa-east-1"

  default_tags {
    tags = local.tags
  }
}

module "network" {
  source     = "../../modules/network"
  name       = local.name
  cidr_block = "10.10.0.0/16"
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

module "rds" {
  source                     = "../../modules/rds"
  identifier                 = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.database_subnet_ids
  allowed_security_group_ids = [module.eks.cluster_security_group_id]
  replica_availability_zone  = local.azs[2]
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
  bucket_name       = "${var.bucket_prefix}-wms-backups-sa-east-1"
  access_log_bucket = var.access_log_bucket
  tags              = local.tags
}
