variable "environment" {
  description = "staging or production."
  type        = string
  default     = "production"
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed to reach the EKS API (deploy runners, operators' VPN)."
  type        = list(string)
}

variable "bucket_prefix" {
  description = "Globally unique prefix of the S3 bucket names (e.g. the organisation)."
  type        = string
}

variable "access_log_bucket" {
  description = "Bucket receiving S3 server access logs in this Region."
  type        = string
}
