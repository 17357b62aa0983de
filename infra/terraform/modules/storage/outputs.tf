output "warehouse_bucket" {
  description = "Name of the bucket that holds the Delta warehouse."
  value       = aws_s3_bucket.this["warehouse"].id
}

output "warehouse_uri" {
  description = "Warehouse root to put in configs/cluster.yaml (`warehouse:`)."
  value       = "s3://${aws_s3_bucket.this["warehouse"].id}/warehouse"
}

output "checkpoints_bucket" {
  description = "Name of the bucket for Ray Train runs and checkpoints."
  value       = aws_s3_bucket.this["checkpoints"].id
}

output "checkpoints_uri" {
  description = "Storage root for training runs (`train.output_dir:` in configs/cluster.yaml)."
  value       = "s3://${aws_s3_bucket.this["checkpoints"].id}/runs"
}

output "artifacts_bucket" {
  description = "Name of the bucket for the wheel, the packed venv, configs and job logs."
  value       = aws_s3_bucket.this["artifacts"].id
}

output "bucket_arns" {
  description = "ARNs of the three buckets, keyed warehouse / checkpoints / artifacts."
  value       = { for k, b in aws_s3_bucket.this : k => b.arn }
}

output "delta_lock_table_name" {
  description = "DynamoDB table for the delta-rs S3 locking provider (null when not created)."
  value       = try(aws_dynamodb_table.delta_lock[0].name, null)
}

output "delta_lock_table_arn" {
  description = "ARN of the delta-rs lock table (null when not created)."
  value       = try(aws_dynamodb_table.delta_lock[0].arn, null)
}
