output "cluster_name" {
  description = "Name of the EKS cluster."
  value       = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  description = "Kubernetes API endpoint (for the kubernetes and helm providers)."
  value       = aws_eks_cluster.this.endpoint
}

output "cluster_ca_certificate" {
  description = "Base64-encoded cluster CA certificate (for the kubernetes and helm providers)."
  value       = aws_eks_cluster.this.certificate_authority[0].data
}

output "node_role_arn" {
  description = "IAM role of the worker nodes."
  value       = aws_iam_role.node.arn
}

output "gpu_node_group_name" {
  description = "Name of the GPU node group (scale it with `aws eks update-nodegroup-config`)."
  value       = aws_eks_node_group.gpu.node_group_name
}

output "gpu_node_selector" {
  description = "Node label that selects the GPU nodes."
  value       = { "b2ner/node-role" = "gpu" }
}

output "cpu_node_selector" {
  description = "Node label that selects the CPU nodes."
  value       = { "b2ner/node-role" = "cpu" }
}

output "addons_ready" {
  description = "Ids of the managed add-ons; depend on this before installing workloads that need Pod Identity."
  value       = [for a in aws_eks_addon.this : a.id]
}
