# Remote state in S3 with a DynamoDB lock table, configured at init time (partial
# configuration) so no real bucket or table name is committed:
#
#   terraform init -backend-config=backend.hcl   # copy backend.hcl.example, fill it in
#
# See docs/infrastructure.md "Terraform state".
terraform {
  backend "s3" {}
}
