variable "name" {
  type = string
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  description = "One private subnet per AZ (three brokers)."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  type = list(string)
}

variable "logs_kms_key_arn" {
  type = string
}

variable "kafka_version" {
  type    = string
  default = "3.6.0"
}

variable "broker_instance_type" {
  type    = string
  default = "kafka.m7g.large"
}

variable "broker_volume_gb" {
  type    = number
  default = 500
}

variable "tags" {
  type    = map(string)
  default = {}
}
