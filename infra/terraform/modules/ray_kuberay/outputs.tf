output "namespace" {
  description = "Namespace of the RayCluster."
  value       = kubernetes_namespace_v1.ray.metadata[0].name
}

output "head_service" {
  description = "Kubernetes service of the Ray head (dashboard 8265 for `ray job submit`, client 10001)."
  value       = "${var.ray_cluster_name}-head-svc"
}

output "dashboard_port_forward" {
  description = "Command that makes the Ray dashboard / job API reachable at http://127.0.0.1:8265."
  value       = "kubectl -n ${kubernetes_namespace_v1.ray.metadata[0].name} port-forward svc/${var.ray_cluster_name}-head-svc 8265:8265"
}

output "pod_role_arn" {
  description = "IAM role assumed by Ray pods through EKS Pod Identity."
  value       = aws_iam_role.pods.arn
}

output "service_account" {
  description = "Service account the Ray pods run as (bound to pod_role_arn)."
  value       = kubernetes_service_account_v1.ray.metadata[0].name
}
