output "database_arn" {
  value = module.database.arn
}

output "database_endpoint" {
  value = module.database.endpoint
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
