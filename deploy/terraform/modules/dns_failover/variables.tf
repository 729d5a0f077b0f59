variable "zone_id" {
  description = "Hosted zone of the API name."
  type        = string
}

variable "record_name" {
  description = "The API name, e.g. api.wms.example.com."
  type        = string
}

variable "primary_health_fqdn" {
  description = "Name that reaches the primary Region's load balancer directly (health check target)."
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

variable "tags" {
  type    = map(string)
  default = {}
}
