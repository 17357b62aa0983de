# Credentials come from the environment (AWS_PROFILE, SSO, or a CI role); nothing secret lives here.
provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, { "b2ner:environment" = var.name_prefix })
  }
}

# The Kubernetes-side providers authenticate with a short-lived token from `aws eks get-token`.
provider "kubernetes" {
  host                   = module.eks.cluster_endpoint
  cluster_ca_certificate = base64decode(module.eks.cluster_ca_certificate)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
  }
}

provider "helm" {
  kubernetes = {
    host                   = module.eks.cluster_endpoint
    cluster_ca_certificate = base64decode(module.eks.cluster_ca_certificate)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", module.eks.cluster_name, "--region", var.region]
    }
  }
}
