variable "identifier" {
  type = string
}

variable "source_db_arn" {
  description = "ARN of the primary DB instance in the primary Region (output primary_arn of the sa-east-1 stack)."
  type        = string
}

variable "promoted" {
  description = "false: a replica of source_db_arn; true: promoted to a standalone primary (runbook)."
  type        = bool
  default     = false
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  type = list(string)
}

variable "allowed_security_group_ids" {
  type = list(string)
}

variable "instance_class" {
  type    = string
  default = "db.r6i.2xlarge"
}

variable "max_allocated_storage_gb" {
  type    = number
  default = 2000
}

variable "max_connections" {
  type    = number
  default = 1000
}

variable "tags" {
  type    = map(string)
  default = {}
}
