variable "environment" {
  type    = string
  default = "production"
}

variable "primary_db_arn" {
  description = "ARN of the São Paulo primary (output primary_db_arn of the sa-east-1 stack)."
  type        = string
}

variable "promoted" {
  description = "Set true only by the region-failover runbook: promotes the replica."
  type        = bool
  default     = false
}

variable "eks_public_access_cidrs" {
  type = list(string)
}

variable "bucket_prefix" {
  type = string
}

variable "access_log_bucket" {
  type = string
}

variable "zone_id" {
  description = "Route 53 hosted zone of the API name."
  type        = string
}

variable "api_record_name" {
  type    = string
  default = "api.wms.example.com"
}

variable "primary_health_fqdn" {
  description = "Regional name of the São Paulo load balancer (e.g. sa-east-1.api.wms.example.com)."
  type        = string
}

variable "primary_lb_dns_name" {
  type = string
}

variable "primary_lb_zone_id" {
  type = string
}

variable "secondary_lb_dns_name" {
  type = string
}

variable "secondary_lb_zone_id" {
  type = string
}
