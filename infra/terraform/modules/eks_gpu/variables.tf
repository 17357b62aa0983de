variable "cluster_name" {
  description = "Name of the EKS cluster that hosts the Ray cluster."
  type        = string
}

variable "kubernetes_version" {
  description = "Kubernetes minor version of the control plane and node groups (e.g. \"1.33\")."
  type        = string
  default     = "1.33"
}

variable "subnet_ids" {
  description = "Private subnets (at least two availability zones) for the control plane ENIs and the nodes. Bring your own VPC: this module creates none."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "EKS needs subnets in at least two availability zones."
  }
}

variable "endpoint_public_access" {
  description = "Expose the Kubernetes API endpoint publicly (restricted to public_access_cidrs). False = reachable only from inside the VPC (VPN, bastion, CI runner in the VPC)."
  type        = bool
  default     = true
}

variable "public_access_cidrs" {
  description = "CIDR blocks allowed to reach the public API endpoint. Narrow this to your office/VPN ranges."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "cpu_instance_types" {
  description = "Instance types of the CPU node group (Ray head, KubeRay operator, CPU workers for data loading and evaluation)."
  type        = list(string)
  default     = ["m7i.2xlarge"]
}

variable "cpu_min_size" {
  description = "Minimum number of CPU nodes."
  type        = number
  default     = 1
}

variable "cpu_desired_size" {
  description = "Initial number of CPU nodes (later changes by an autoscaler are ignored by Terraform)."
  type        = number
  default     = 2
}

variable "cpu_max_size" {
  description = "Maximum number of CPU nodes."
  type        = number
  default     = 6
}

variable "gpu_instance_types" {
  description = "Instance types of the GPU node group used by the Ray GPU worker group (LoRA fine-tuning, LLM batch inference)."
  type        = list(string)
  default     = ["g6e.2xlarge"]
}

variable "gpu_ami_type" {
  description = "EKS-optimized AMI with NVIDIA drivers for the GPU nodes."
  type        = string
  default     = "AL2023_x86_64_NVIDIA"
}

variable "gpu_capacity_type" {
  description = "ON_DEMAND or SPOT for the GPU nodes. SPOT is cheaper; training resumes from its last checkpoint after an interruption."
  type        = string
  default     = "ON_DEMAND"

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.gpu_capacity_type)
    error_message = "gpu_capacity_type must be ON_DEMAND or SPOT."
  }
}

variable "gpu_min_size" {
  description = "Minimum number of GPU nodes. 0 lets the group sit empty between runs (scale it up before a run, or install a node autoscaler)."
  type        = number
  default     = 0
}

variable "gpu_desired_size" {
  description = "Initial number of GPU nodes (later changes by an autoscaler are ignored by Terraform)."
  type        = number
  default     = 1
}

variable "gpu_max_size" {
  description = "Maximum number of GPU nodes."
  type        = number
  default     = 4
}

variable "gpu_disk_size_gb" {
  description = "Root volume size of GPU nodes in GiB (container images with CUDA and model weights are large)."
  type        = number
  default     = 200
}

variable "admin_principal_arns" {
  description = "IAM principals (roles/users) granted cluster-admin through EKS access entries, besides the identity that runs Terraform."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags applied to every resource of this module."
  type        = map(string)
  default     = {}
}
