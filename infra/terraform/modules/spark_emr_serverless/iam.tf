# Job execution role: what the Spark driver and executors may touch. Least privilege: the warehouse
# prefix read-write, b2ner's artifacts read-only (logs/ writable), listed inputs read-only, nothing else.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  s3_arn = "arn:${data.aws_partition.current.partition}:s3:::"
  # "s3://bucket/some/prefix/" -> bucket, prefix
  read_only = [for u in var.read_only_s3_uris : {
    bucket = split("/", trimprefix(u, "s3://"))[0]
    prefix = trimsuffix(join("/", slice(split("/", trimprefix(u, "s3://")), 1, length(split("/", trimprefix(u, "s3://"))))), "/")
  }]
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["emr-serverless.amazonaws.com"]
    }
    # Only EMR Serverless applications of this account may assume the role (confused-deputy guard).
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

data "aws_iam_policy_document" "job" {
  statement {
    sid       = "ListWarehouse"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = ["${local.s3_arn}${var.warehouse_bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.warehouse_prefix, "${var.warehouse_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadWriteWarehouse"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = ["${local.s3_arn}${var.warehouse_bucket}/${var.warehouse_prefix}/*"]
  }

  statement {
    sid       = "ListArtifacts"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = ["${local.s3_arn}${var.artifacts_bucket}"]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [var.artifacts_prefix, "${var.artifacts_prefix}/*"]
    }
  }

  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${local.s3_arn}${var.artifacts_bucket}/${var.artifacts_prefix}/*"]
  }

  statement {
    sid       = "WriteJobLogs"
    actions   = ["s3:PutObject"]
    resources = ["${local.s3_arn}${var.artifacts_bucket}/${var.artifacts_prefix}/logs/*"]
  }

  dynamic "statement" {
    for_each = local.read_only
    content {
      sid       = "ListInput${statement.key}"
      actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
      resources = ["${local.s3_arn}${statement.value.bucket}"]
      condition {
        test     = "StringLike"
        variable = "s3:prefix"
        values   = statement.value.prefix == "" ? ["*"] : [statement.value.prefix, "${statement.value.prefix}/*"]
      }
    }
  }

  dynamic "statement" {
    for_each = local.read_only
    content {
      sid       = "ReadInput${statement.key}"
      actions   = ["s3:GetObject"]
      resources = [statement.value.prefix == "" ? "${local.s3_arn}${statement.value.bucket}/*" : "${local.s3_arn}${statement.value.bucket}/${statement.value.prefix}/*"]
    }
  }

  dynamic "statement" {
    for_each = var.delta_lock_table_arn == null ? [] : [var.delta_lock_table_arn]
    content {
      sid       = "DeltaRsLock"
      actions   = ["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:Query", "dynamodb:DescribeTable"]
      resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.kms_key_arn == null ? [] : [var.kms_key_arn]
    content {
      sid       = "BucketKms"
      actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role" "job" {
  name               = "${var.name}-emr-job"
  assume_role_policy = data.aws_iam_policy_document.assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "job" {
  name   = "b2ner-spark-jobs"
  role   = aws_iam_role.job.id
  policy = data.aws_iam_policy_document.job.json
}
