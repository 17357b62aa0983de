variable "region" {
  description = "AWS region of every resource (EMR Serverless, EKS, S3)."
  type        = string
  default     = "us-east-1"
}

variable "name_prefix" {
  description = "Prefix of all names; S3 bucket names are global, so include something unique (e.g. \"acme-b2ner-prod\")."
  type        = string
}

variable "subnet_ids" {
  description = "Private subnets (two or more AZs) of an existing VPC with a NAT gateway or S3/ECR/STS VPC endpoints: used by EKS and the EMR Serverless workers."
  type        = list(string)
}

variable "emr_security_group_ids" {
  description = "Security groups of the EMR Serverless workers (egress to S3 and, with delta_packages, to Maven Central)."
  type        = list(string)
  default     = []
}

variable "read_only_s3_uris" {
  description = "s3:// prefixes with raw corpora and documents to annotate that the Spark jobs may read."
  type        = list(string)
  default     = []
}

variable "ray_head_image" {
  description = "Image for the Ray head and CPU workers: rayproject/ray:<ray_version>-py311 with b2ner installed, pushed to your ECR."
  type        = string
}

variable "ray_gpu_image" {
  description = "Image for the Ray GPU workers: rayproject/ray:<ray_version>-py311-gpu with b2ner[train] installed."
  type        = string
}

variable "gpu_instance_types" {
  description = "GPU instance types for the Ray GPU worker group (e.g. g6e.2xlarge with one L40S, p5.48xlarge with eight H100)."
  type        = list(string)
  default     = ["g6e.2xlarge"]
}

variable "gpu_worker" {
  description = "GPU worker pod size and replica bounds; keep gpus equal to the GPUs of one gpu_instance_types node."
  type = object({
    gpus         = number
    cpu          = string
    memory       = string
    min_replicas = number
    max_replicas = number
  })
  default = { gpus = 1, cpu = "7", memory = "56Gi", min_replicas = 0, max_replicas = 4 }
}

variable "gpu_max_nodes" {
  description = "Upper bound of the GPU node group (cost guard)."
  type        = number
  default     = 4
}

variable "eks_public_access_cidrs" {
  description = "CIDRs allowed to reach the EKS API endpoint (narrow to your VPN)."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "eks_admin_principal_arns" {
  description = "Extra IAM roles/users that get cluster-admin on EKS (ML engineers, CI)."
  type        = list(string)
  default     = []
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete non-empty buckets (only for throw-away environments)."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags on every resource."
  type        = map(string)
  default     = { "b2ner:managed-by" = "terraform" }
}
