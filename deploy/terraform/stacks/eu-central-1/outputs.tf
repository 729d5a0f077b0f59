output "primary_db_arn" {
  description = "ARN of the Frankfurt primary (never replicated outside the EU)."
  value       = module.rds.primary_arn
}

output "database_endpoint" {
  value = module.rds.primary_endpoint
}

output "reports_replica_endpoint" {
  description = "DATABASE_REPLICA_URL host."
  value       = module.rds.reports_replica_endpoint
}

output "master_user_secret_arn" {
  value = module.rds.master_user_secret_arn
}

output "redis_endpoint" {
  value = module.redis.primary_endpoint
}

output "kafka_brokers" {
  value = module.kafka.bootstrap_brokers_sasl_iam
}

output "eks_cluster_name" {
  value = module.eks.cluster_name
}

output "backup_bucket" {
  value = module.backups.bucket
}
