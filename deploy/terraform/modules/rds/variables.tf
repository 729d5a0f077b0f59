variable "identifier" {
  description = "RDS identifier of the primary (e.g. wms-sa-east-1)."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  description = "Database subnets in all three AZs (the replica's AZ must be among them)."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups (the EKS cluster's) allowed to connect on 5432."
  type        = list(string)
}

variable "instance_class" {
  type    = string
  default = "db.r6i.2xlarge"
}

variable "replica_instance_class" {
  type    = string
  default = "db.r6i.xlarge"
}

variable "replica_availability_zone" {
  description = "AZ of the reports replica: in this Region, not the primary's."
  type        = string
}

variable "allocated_storage_gb" {
  type    = number
  default = 500
}

variable "max_allocated_storage_gb" {
  type    = number
  default = 2000
}

variable "iops" {
  type    = number
  default = 12000
}

variable "max_connections" {
  description = "max_connections; the Helm values keep maxReplicas x processes x pool + workers <= 70% of it."
  type        = number
  default     = 1000
}

variable "tags" {
  type    = map(string)
  default = {}
}
