variable "name" {
  description = "Name of the EMR Serverless application and prefix of its IAM role."
  type        = string
}

variable "release_label" {
  description = "EMR release. b2ner's Spark jobs need Spark 4 (Python data sources, DataFrame.toArrow); emr-spark-8.0.0 ships Spark 4.0.x, Python 3.11 and Delta 4.0."
  type        = string
  default     = "emr-spark-8.0.0"
}

variable "architecture" {
  description = "CPU architecture of the workers: X86_64 or ARM64. The packed venv (or custom image) must be built for the same one."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.architecture)
    error_message = "architecture must be X86_64 or ARM64."
  }
}

variable "max_cpu" {
  description = "Upper bound on vCPUs used by all running jobs of the application together (e.g. \"200 vCPU\"): the cost guard."
  type        = string
  default     = "200 vCPU"
}

variable "max_memory" {
  description = "Upper bound on memory used by all running jobs (e.g. \"800 GB\")."
  type        = string
  default     = "800 GB"
}

variable "max_disk" {
  description = "Upper bound on worker disk used by all running jobs (e.g. \"4000 GB\")."
  type        = string
  default     = "4000 GB"
}

variable "idle_timeout_minutes" {
  description = "Minutes without jobs before the application releases its workers (auto-stop)."
  type        = number
  default     = 15
}

variable "subnet_ids" {
  description = "Private subnets for the workers. Empty = no VPC attachment (workers reach S3 and the internet through EMR's own network)."
  type        = list(string)
  default     = []
}

variable "security_group_ids" {
  description = "Security groups for the workers when subnet_ids is set."
  type        = list(string)
  default     = []
}

variable "custom_image_uri" {
  description = "ECR image built FROM the EMR Serverless Spark base image with b2ner installed. Null = the stock image plus the packed venv (python_env_archive_key)."
  type        = string
  default     = null
}

variable "warehouse_bucket" {
  description = "Bucket that holds the Delta warehouse (read-write for the jobs)."
  type        = string
}

variable "warehouse_prefix" {
  description = "Key prefix of the warehouse inside warehouse_bucket (no leading or trailing slash)."
  type        = string
  default     = "warehouse"
}

variable "artifacts_bucket" {
  description = "Bucket with the wheel, the packed venv, the configs and the entry point (read-only for the jobs, except logs/)."
  type        = string
}

variable "artifacts_prefix" {
  description = "Key prefix of b2ner's artifacts inside artifacts_bucket."
  type        = string
  default     = "b2ner"
}

variable "python_env_archive_key" {
  description = "Key (under artifacts_prefix) of the venv-pack archive shipped to every worker as spark.archives. Empty when custom_image_uri has b2ner installed."
  type        = string
  default     = "b2ner-venv.tar.gz"
}

variable "config_key" {
  description = "Key (under artifacts_prefix) of the cluster config YAML; it is shipped with --files and passed to every command as `-c cluster.yaml`."
  type        = string
  default     = "configs/cluster.yaml"
}

variable "read_only_s3_uris" {
  description = "Extra s3:// prefixes the jobs may read (raw corpora, documents to annotate), e.g. [\"s3://corp-data/ner-corpora/\"]."
  type        = list(string)
  default     = []
}

variable "delta_jars" {
  description = "Delta Lake jars put on spark.jars. The default points at the jars bundled in EMR images; use s3:// URIs of jars you uploaded for a release without them."
  type        = list(string)
  default     = ["/usr/share/aws/delta/lib/delta-spark.jar", "/usr/share/aws/delta/lib/delta-storage.jar"]
}

variable "delta_packages" {
  description = "Maven coordinates passed as --packages instead of delta_jars, e.g. \"io.delta:delta-spark_2.13:4.0.0\" (the workers then need internet access to Maven Central). Empty = use delta_jars."
  type        = string
  default     = ""
}

variable "delta_lock_table_arn" {
  description = "ARN of the delta-rs DynamoDB lock table; grants the jobs access to it. Null when only delta-spark commits."
  type        = string
  default     = null
}

variable "kms_key_arn" {
  description = "KMS key that encrypts the buckets; the job role may use it. Null for SSE-S3."
  type        = string
  default     = null
}

variable "extra_spark_conf" {
  description = "Additional spark.* properties appended to every job's spark-submit parameters (executor sizes, dynamic allocation limits)."
  type        = map(string)
  default = {
    "spark.emr-serverless.driver.disk"   = "50G"
    "spark.emr-serverless.executor.disk" = "50G"
    "spark.executor.cores"               = "4"
    "spark.executor.memory"              = "14g"
  }
}

variable "tags" {
  description = "Tags applied to every resource of this module."
  type        = map(string)
  default     = {}
}
