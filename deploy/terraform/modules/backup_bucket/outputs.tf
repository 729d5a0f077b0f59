output "bucket" {
  value = aws_s3_bucket.backups.id
}

output "arn" {
  value = aws_s3_bucket.backups.arn
}

output "kms_key_arn" {
  value = aws_kms_key.backups.arn
}
