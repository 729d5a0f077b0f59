# Exact provider versions: every stack plans with the same providers in CI and on a
# laptop (`terraform init` records their checksums in .terraform.lock.hcl; commit it).
terraform {
  required_version = "= 1.11.4"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "= 5.82.2"
    }
    random = {
      source  = "hashicorp/random"
      version = "= 3.6.3"
    }
  }
}
