variable "cluster_name" {
  description = "EKS cluster to install into (output cluster_name of the eks_gpu module)."
  type        = string
}

variable "namespace" {
  description = "Kubernetes namespace of the RayCluster and its service account."
  type        = string
  default     = "b2ner"
}

variable "ray_cluster_name" {
  description = "Name of the RayCluster resource; KubeRay names the head service <name>-head-svc."
  type        = string
  default     = "b2ner"
}

variable "kuberay_operator_version" {
  description = "Version of the kuberay-operator Helm chart (pinned: the RayCluster CRD changes between minor releases)."
  type        = string
  default     = "1.4.2"
}

variable "nvidia_device_plugin_version" {
  description = "Version of the NVIDIA device plugin Helm chart, which advertises nvidia.com/gpu on the GPU nodes."
  type        = string
  default     = "0.17.1"
}

variable "ray_version" {
  description = "Ray version inside the images; must match the ray pinned in requirements.txt so that `ray job submit` clients and the cluster agree."
  type        = string
  default     = "2.60.0"
}

variable "head_image" {
  description = "Container image of the Ray head and CPU workers: a Ray image of ray_version with b2ner installed (see docs/runbooks/ray.md)."
  type        = string
}

variable "gpu_image" {
  description = "Container image of the GPU workers (CUDA build of the same Ray version, with b2ner[train] installed)."
  type        = string
}

variable "head_resources" {
  description = "CPU and memory of the head pod (it schedules no tasks: num-cpus 0)."
  type        = object({ cpu = string, memory = string })
  default     = { cpu = "2", memory = "8Gi" }
}

variable "cpu_worker" {
  description = "CPU worker group: pod size and replica bounds (data loading, evaluation, span-encoder training)."
  type = object({
    cpu          = string
    memory       = string
    min_replicas = number
    max_replicas = number
  })
  default = { cpu = "7", memory = "28Gi", min_replicas = 0, max_replicas = 4 }
}

variable "gpu_worker" {
  description = "GPU worker group: GPUs, CPU and memory per pod and replica bounds. One pod per GPU node is the usual layout."
  type = object({
    gpus         = number
    cpu          = string
    memory       = string
    min_replicas = number
    max_replicas = number
  })
  default = { gpus = 1, cpu = "7", memory = "56Gi", min_replicas = 0, max_replicas = 4 }
}

variable "gpu_node_selector" {
  description = "Node labels of the GPU nodes (output gpu_node_selector of the eks_gpu module)."
  type        = map(string)
  default     = { "b2ner/node-role" = "gpu" }
}

variable "cpu_node_selector" {
  description = "Node labels of the CPU nodes (output cpu_node_selector of the eks_gpu module)."
  type        = map(string)
  default     = { "b2ner/node-role" = "cpu" }
}

variable "warehouse_bucket" {
  description = "Bucket of the Delta warehouse: training reads gold/selection, batch inference writes gold/predictions."
  type        = string
}

variable "warehouse_prefix" {
  description = "Key prefix of the warehouse inside warehouse_bucket."
  type        = string
  default     = "warehouse"
}

variable "checkpoints_bucket" {
  description = "Bucket for Ray Train run directories and checkpoints (read-write)."
  type        = string
}

variable "artifacts_bucket" {
  description = "Bucket with base models and b2ner artifacts (read-only for the pods)."
  type        = string
}

variable "artifacts_prefix" {
  description = "Key prefix inside artifacts_bucket that the pods may read (base model weights, wheels)."
  type        = string
  default     = "b2ner"
}

variable "delta_lock_table_arn" {
  description = "ARN of the delta-rs DynamoDB lock table (null = no locking provider configured in the pods)."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the buckets; the pod role may use it. Null for SSE-S3."
  type        = string
  default     = null
}

variable "depends_on_addons" {
  description = "Ids of EKS add-ons (Pod Identity agent, CNI) that must exist before pods start; pass the eks_gpu module's addons_ready output."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags applied to the AWS resources of this module."
  type        = map(string)
  default     = {}
}
