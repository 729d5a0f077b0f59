# Route 53 failover for the API name: PRIMARY answers while its health check (HTTPS
# /health/ready through the São Paulo load balancer) passes; otherwise SECONDARY (N.
# Virginia). The load balancers are created by the AWS Load Balancer Controller from the
# Helm chart's Ingress, so their names come in as variables.

resource "aws_route53_health_check" "primary" {
  fqdn              = var.primary_health_fqdn
  port              = 443
  type              = "HTTPS"
  resource_path     = "/health/ready"
  request_interval  = 10
  failure_threshold = 3
  measure_latency   = true
  regions           = ["sa-east-1", "us-east-1", "us-west-2", "eu-west-1"]

  tags = merge(var.tags, { Name = "${var.record_name}-primary" })
}

resource "aws_route53_record" "primary" {
  zone_id         = var.zone_id
  name            = var.record_name
  type            = "A"
  set_identifier  = "primary"
  health_check_id = aws_route53_health_check.primary.id

  failover_routing_policy {
    type = "PRIMARY"
  }

  alias {
    name                   = var.primary_lb_dns_name
    zone_id                = var.primary_lb_zone_id
    evaluate_target_health = true
  }
}

resource "aws_route53_record" "secondary" {
  zone_id        = var.zone_id
  name           = var.record_name
  type           = "A"
  set_identifier = "secondary"

  failover_routing_policy {
    type = "SECONDARY"
  }

  alias {
    name                   = var.secondary_lb_dns_name
    zone_id                = var.secondary_lb_zone_id
    evaluate_target_health = true
  }
}
