output "application_id" {
  description = "EMR Serverless application id (`aws emr-serverless start-job-run --application-id`)."
  value       = aws_emrserverless_application.spark.id
}

output "application_arn" {
  description = "ARN of the EMR Serverless application."
  value       = aws_emrserverless_application.spark.arn
}

output "job_role_arn" {
  description = "Job execution role (`--execution-role-arn`)."
  value       = aws_iam_role.job.arn
}

output "entry_point" {
  description = "S3 URI of the entry point that runs one b2ner command."
  value       = local.entry_point
}

output "spark_submit_parameters" {
  description = "sparkSubmitParameters for every b2ner job: Delta extension + catalog, Delta jars, the packed venv, the cluster config."
  value       = local.spark_submit_parameters
}

output "log_uri" {
  description = "Where driver and executor logs of every job run land."
  value       = local.log_uri
}

output "job_run_template" {
  description = "JSON for `aws emr-serverless start-job-run --cli-input-json`; replace the entryPointArguments with the stage to run."
  value = jsonencode({
    applicationId    = aws_emrserverless_application.spark.id
    executionRoleArn = aws_iam_role.job.arn
    name             = "b2ner-ingest"
    jobDriver = {
      sparkSubmit = {
        entryPoint            = local.entry_point
        entryPointArguments   = ["ingest", "-c", "cluster.yaml"]
        sparkSubmitParameters = local.spark_submit_parameters
      }
    }
    configurationOverrides = {
      monitoringConfiguration = {
        s3MonitoringConfiguration = { logUri = local.log_uri }
      }
    }
  })
}
