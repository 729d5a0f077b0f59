output "primary_arn" {
  description = "Source ARN for cross-Region replicas (the N. Virginia stack)."
  value       = aws_db_instance.primary.arn
}

output "primary_endpoint" {
  value = aws_db_instance.primary.endpoint
}

output "primary_availability_zone" {
  value = aws_db_instance.primary.availability_zone
}

output "reports_replica_endpoint" {
  value = aws_db_instance.reports_replica.endpoint
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret of the master login (RDS-managed)."
  value       = aws_db_instance.primary.master_user_secret[0].secret_arn
}

output "kms_key_arn" {
  value = aws_kms_key.rds.arn
}

output "security_group_id" {
  value = aws_security_group.db.id
}

output "final_snapshot_identifier" {
  value = aws_db_instance.primary.final_snapshot_identifier
}
