# Frankfurt: an independent cell for European tenants. Its data never leaves the EU:
# no replication to or from the other Regions (database, backups, events); European
# tenants are created here and their API name points here.

locals {
  name = "wms-eu-central-1"
  azs  = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
  tags = {
    Project       = "wms"
    Environment   = var.environment
    Region        = "eu-central-1"
    Role          = "independent-cell"
    DataResidency = "EU"
  }
}

provider "aws" {
  region = "eu-central-1"

  default_tags {
    tags = local.tags
  }
}

module "network" {
  source     = "../../modules/network"
  name       = local.name
  cidr_block = "10.30.0.0/16"
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
      max_size       = 20
    }
    worker = {
      instance_types = ["m7i.large", "m6i.large"]
      min_size       = 3
      max_size       = 6
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
  bucket_name       = "${var.bucket_prefix}-wms-backups-eu-central-1"
  access_log_bucket = var.access_log_bucket
  tags              = local.tags
}
