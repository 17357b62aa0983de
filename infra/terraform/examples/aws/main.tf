# Example root: shared storage + EMR Serverless (Spark stages) + EKS/KubeRay (training, batch inference).
# terraform init && terraform validate && terraform plan -var-file=terraform.tfvars

module "storage" {
  source = "../../modules/storage"

  name_prefix   = var.name_prefix
  force_destroy = var.force_destroy_buckets
  tags          = var.tags
}

module "spark" {
  source = "../../modules/spark_emr_serverless"

  name                 = "${var.name_prefix}-spark"
  subnet_ids           = var.subnet_ids
  security_group_ids   = var.emr_security_group_ids
  warehouse_bucket     = module.storage.warehouse_bucket
  artifacts_bucket     = module.storage.artifacts_bucket
  read_only_s3_uris    = var.read_only_s3_uris
  delta_lock_table_arn = module.storage.delta_lock_table_arn
  tags                 = var.tags
}

module "eks" {
  source = "../../modules/eks_gpu"

  cluster_name         = "${var.name_prefix}-ray"
  subnet_ids           = var.subnet_ids
  gpu_instance_types   = var.gpu_instance_types
  gpu_max_size         = var.gpu_max_nodes
  public_access_cidrs  = var.eks_public_access_cidrs
  admin_principal_arns = var.eks_admin_principal_arns
  tags                 = var.tags
}

module "ray" {
  source = "../../modules/ray_kuberay"

  cluster_name         = module.eks.cluster_name
  head_image           = var.ray_head_image
  gpu_image            = var.ray_gpu_image
  gpu_worker           = var.gpu_worker
  gpu_node_selector    = module.eks.gpu_node_selector
  cpu_node_selector    = module.eks.cpu_node_selector
  warehouse_bucket     = module.storage.warehouse_bucket
  checkpoints_bucket   = module.storage.checkpoints_bucket
  artifacts_bucket     = module.storage.artifacts_bucket
  delta_lock_table_arn = module.storage.delta_lock_table_arn
  depends_on_addons    = module.eks.addons_ready
  tags                 = var.tags
}
