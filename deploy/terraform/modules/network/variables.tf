variable "name" {
  description = "Name prefix of every resource (e.g. wms-sa-east-1)."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's IPv4 range (a /16)."
  type        = string
}

variable "azs" {
  description = "Availability Zones to spread the subnets over (three)."
  type        = list(string)

  validation {
    condition     = length(var.azs) == 3
    error_message = "The network spans exactly three Availability Zones."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
