output "bootstrap_brokers_sasl_iam" {
  description = "KAFKA_BROKERS for the worker."
  value       = aws_msk_cluster.this.bootstrap_brokers_sasl_iam
}

output "cluster_arn" {
  value = aws_msk_cluster.this.arn
}
