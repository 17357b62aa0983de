# S3 access for Ray pods through EKS Pod Identity: the role is bound to one service account in one
# namespace. Least privilege: warehouse and checkpoints read-write under their prefixes, artifacts read-only.

data "aws_partition" "current" {}

locals {
  s3_arn = "arn:${data.aws_partition.current.partition}:s3:::"
}

data "aws_iam_policy_document" "pod_assume" {
  statement {
    actions = ["sts:AssumeRole", "sts:TagSession"]
    principals {
      type        = "Service"
      identifiers = ["pods.eks.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "pods" {
  statement {
    sid       = "ListBuckets"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = ["${local.s3_arn}${var.warehouse_bucket}", "${local.s3_arn}${var.checkpoints_bucket}", "${local.s3_arn}${var.artifacts_bucket}"]
  }

  statement {
    sid     = "ReadWriteWarehouseAndRuns"
    actions = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload"]
    resources = [
      "${local.s3_arn}${var.warehouse_bucket}/${var.warehouse_prefix}/*",
      "${local.s3_arn}${var.checkpoints_bucket}/*",
    ]
  }

  statement {
    sid       = "ReadArtifacts"
    actions   = ["s3:GetObject"]
    resources = ["${local.s3_arn}${var.artifacts_bucket}/${var.artifacts_prefix}/*"]
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

resource "aws_iam_role" "pods" {
  name               = "${var.cluster_name}-${var.namespace}-ray"
  assume_role_policy = data.aws_iam_policy_document.pod_assume.json
  tags               = var.tags
}

resource "aws_iam_role_policy" "pods" {
  name   = "b2ner-ray-pods"
  role   = aws_iam_role.pods.id
  policy = data.aws_iam_policy_document.pods.json
}

resource "aws_eks_pod_identity_association" "ray" {
  cluster_name    = var.cluster_name
  namespace       = kubernetes_namespace_v1.ray.metadata[0].name
  service_account = kubernetes_service_account_v1.ray.metadata[0].name
  role_arn        = aws_iam_role.pods.arn
  tags            = var.tags
}
