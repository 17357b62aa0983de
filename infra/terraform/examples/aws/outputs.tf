output "warehouse_uri" {
  description = "Warehouse root for configs/cluster.yaml."
  value       = module.storage.warehouse_uri
}

output "checkpoints_uri" {
  description = "Training output root (train.output_dir) for configs/cluster.yaml."
  value       = module.storage.checkpoints_uri
}

output "artifacts_bucket" {
  description = "Bucket to upload the venv archive and configs/cluster.yaml to (under b2ner/)."
  value       = module.storage.artifacts_bucket
}

output "emr_application_id" {
  description = "EMR Serverless application that runs the Spark stages."
  value       = module.spark.application_id
}

output "emr_job_role_arn" {
  description = "Execution role of the Spark jobs."
  value       = module.spark.job_role_arn
}

output "emr_entry_point" {
  description = "S3 URI of the entry point script (runs one b2ner command)."
  value       = module.spark.entry_point
}

output "emr_spark_submit_parameters" {
  description = "sparkSubmitParameters shared by every b2ner job (Delta, venv, cluster config)."
  value       = module.spark.spark_submit_parameters
}

output "emr_log_uri" {
  description = "S3 prefix of the Spark driver/executor logs."
  value       = module.spark.log_uri
}

output "emr_job_run_template" {
  description = "start-job-run JSON (ingest); docs/runbooks/spark.md shows the other stages."
  value       = module.spark.job_run_template
}

output "eks_cluster_name" {
  description = "EKS cluster; `aws eks update-kubeconfig --name <this>` configures kubectl."
  value       = module.eks.cluster_name
}

output "ray_dashboard_port_forward" {
  description = "Run this, then `ray job submit --address http://127.0.0.1:8265 ...`."
  value       = module.ray.dashboard_port_forward
}

output "b2ner_cluster_overrides" {
  description = "The infrastructure-specific keys of configs/cluster.yaml, ready to paste (or pass as key=value overrides)."
  value = yamlencode({
    warehouse = module.storage.warehouse_uri
    spark     = { delta_jars = "provided" }
    ray       = { address = "auto" }
    train     = { output_dir = module.storage.checkpoints_uri }
  })
}
