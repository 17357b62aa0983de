variable "name_prefix" {
  description = "Prefix of every bucket and table name (e.g. \"b2ner-prod\"). Bucket names are global: include an account or org suffix."
  type        = string

  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9-]{1,40}[a-z0-9]$", var.name_prefix))
    error_message = "name_prefix must be 3-42 lower-case letters, digits or dashes (S3 bucket naming rules)."
  }
}

variable "force_destroy" {
  description = "Allow `terraform destroy` to delete non-empty buckets. Keep false outside throw-away environments: the warehouse is the product."
  type        = bool
  default     = false
}

variable "kms_key_arn" {
  description = "KMS key for server-side encryption of all buckets. Null uses S3-managed keys (SSE-S3)."
  type        = string
  default     = null
}

variable "noncurrent_version_expiration_days" {
  description = "Days before non-current object versions are deleted. Delta keeps its own history in _delta_log; bucket versioning is only a safety net against accidental deletes."
  type        = number
  default     = 30
}

variable "checkpoint_expiration_days" {
  description = "Days before objects under checkpoints/ expire (intermediate Ray Train checkpoints). 0 keeps them forever."
  type        = number
  default     = 0
}

variable "create_delta_lock_table" {
  description = "Create the DynamoDB table that delta-rs uses as its S3 locking provider (safe concurrent commits from the delta-rs backend). Not needed when only delta-spark writes."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags applied to every resource of this module."
  type        = map(string)
  default     = {}
}
