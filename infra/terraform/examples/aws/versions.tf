terraform {
  required_version = ">= 1.6.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = "~> 2.38"
    }
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
  }

  # State: local by default. For a team, use an S3 backend (see infra/terraform/README.md):
  #   terraform init -backend-config=backend.hcl   with   backend "s3" {}   added here.
}
