variable "bucket_name" {
  type = string
}

variable "access_log_bucket" {
  description = "Existing bucket receiving S3 server access logs (the account's log archive)."
  type        = string
}

variable "days_to_infrequent_access" {
  type    = number
  default = 30
}

variable "days_to_glacier" {
  type    = number
  default = 90
}

variable "days_to_deep_archive" {
  type    = number
  default = 180
}

variable "expire_after_days" {
  description = "Backups older than this are deleted (longer than any retention obligation)."
  type        = number
  default     = 2555
}

variable "tags" {
  type    = map(string)
  default = {}
}
