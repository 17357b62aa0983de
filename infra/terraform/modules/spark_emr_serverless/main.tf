# EMR Serverless application (Spark 4 + Delta) that runs the `b2ner` commands whose engine is Spark.
# Each stage is one job run: the entry point below calls the b2ner CLI with the job's arguments.

data "aws_region" "current" {}

locals {
  artifacts_uri = "s3://${var.artifacts_bucket}/${var.artifacts_prefix}"
  python        = "./environment/bin/python"
  use_venv      = var.custom_image_uri == null && var.python_env_archive_key != ""

  delta_conf = merge(
    {
      "spark.sql.extensions"            = "io.delta.sql.DeltaSparkSessionExtension"
      "spark.sql.catalog.spark_catalog" = "org.apache.spark.sql.delta.catalog.DeltaCatalog"
    },
    var.delta_packages == "" ? { "spark.jars" = join(",", var.delta_jars) } : { "spark.jars.packages" = var.delta_packages },
  )

  venv_conf = local.use_venv ? {
    "spark.archives"                                       = "${local.artifacts_uri}/${var.python_env_archive_key}#environment"
    "spark.emr-serverless.driverEnv.PYSPARK_DRIVER_PYTHON" = local.python
    "spark.emr-serverless.driverEnv.PYSPARK_PYTHON"        = local.python
    "spark.executorEnv.PYSPARK_PYTHON"                     = local.python
  } : {}

  # The cluster config travels with the job; every command gets `-c cluster.yaml`.
  files_conf = { "spark.files" = "${local.artifacts_uri}/${var.config_key}" }

  # Tables that b2ner_common.tables commits with delta-rs (outside Spark) need the region and, for safe
  # concurrent commits on S3, the DynamoDB locking provider.
  job_env = merge(
    { AWS_REGION = data.aws_region.current.region },
    var.delta_lock_table_arn == null ? {} : {
      AWS_S3_LOCKING_PROVIDER = "dynamodb"
      DELTA_DYNAMO_TABLE_NAME = element(split("/", var.delta_lock_table_arn), 1)
    },
  )
  env_conf = merge(
    { for k, v in local.job_env : "spark.emr-serverless.driverEnv.${k}" => v },
    { for k, v in local.job_env : "spark.executorEnv.${k}" => v },
  )

  spark_conf = merge(local.delta_conf, local.venv_conf, local.files_conf, local.env_conf, var.extra_spark_conf)

  spark_submit_parameters = join(" ", [for k in sort(keys(local.spark_conf)) : "--conf ${k}=${local.spark_conf[k]}"])
  entry_point             = "${local.artifacts_uri}/entrypoint/b2ner_emr_entrypoint.py"
  log_uri                 = "${local.artifacts_uri}/logs/"
}

resource "aws_emrserverless_application" "spark" {
  name          = var.name
  release_label = var.release_label
  type          = "spark"
  architecture  = var.architecture

  maximum_capacity {
    cpu    = var.max_cpu
    memory = var.max_memory
    disk   = var.max_disk
  }

  auto_start_configuration {
    enabled = true
  }

  auto_stop_configuration {
    enabled              = true
    idle_timeout_minutes = var.idle_timeout_minutes
  }

  dynamic "network_configuration" {
    for_each = length(var.subnet_ids) > 0 ? [1] : []
    content {
      subnet_ids         = var.subnet_ids
      security_group_ids = var.security_group_ids
    }
  }

  dynamic "image_configuration" {
    for_each = var.custom_image_uri == null ? [] : [var.custom_image_uri]
    content {
      image_uri = image_configuration.value
    }
  }

  tags = var.tags
}

resource "aws_s3_object" "entrypoint" {
  bucket = var.artifacts_bucket
  key    = "${var.artifacts_prefix}/entrypoint/b2ner_emr_entrypoint.py"
  source = "${path.module}/files/b2ner_emr_entrypoint.py"
  etag   = filemd5("${path.module}/files/b2ner_emr_entrypoint.py")
  tags   = var.tags
}
