variable "name" {
  type = string
}

variable "kubernetes_version" {
  type    = string
  default = "1.31"
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  description = "Private subnets of the three AZs."
  type        = list(string)
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint (the deploy runners, the operators' VPN); never 0.0.0.0/0."
  type        = list(string)

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "The EKS API endpoint is never open to the whole internet."
  }
}

variable "logs_kms_key_arn" {
  type = string
}

variable "oidc_thumbprints" {
  description = "Thumbprints of the cluster OIDC issuer's CA (documented in docs/infrastructure.md)."
  type        = list(string)
  default     = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
}

variable "node_groups" {
  description = "Managed node groups: instance types and autoscaling bounds."
  type = map(object({
    instance_types = list(string)
    capacity_type  = optional(string, "ON_DEMAND")
    min_size       = number
    max_size       = number
    disk_size_gb   = optional(number, 50)
  }))
}

variable "tags" {
  type    = map(string)
  default = {}
}
