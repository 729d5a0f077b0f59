output "vpc_id" {
  value = aws_vpc.this.id
}

output "vpc_cidr_block" {
  value = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  value = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  value = aws_subnet.private[*].id
}

output "database_subnet_ids" {
  value = aws_subnet.database[*].id
}

output "azs" {
  value = var.azs
}

output "logs_kms_key_arn" {
  description = "KMS key for CloudWatch log groups of this Region."
  value       = aws_kms_key.logs.arn
}
