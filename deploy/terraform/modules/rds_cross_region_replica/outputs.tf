output "arn" {
  value = aws_db_instance.replica.arn
}

output "endpoint" {
  value = aws_db_instance.replica.endpoint
}

output "security_group_id" {
  value = aws_security_group.db.id
}
