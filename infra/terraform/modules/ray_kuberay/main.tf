# KubeRay operator + NVIDIA device plugin + one RayCluster (head, CPU worker group, GPU worker group).
# The RayCluster is rendered by the small local chart in ./chart so that it is applied after the
# operator has installed the CRD (a kubernetes_manifest would need the CRD already at plan time).

data "aws_region" "current" {}

locals {
  pod_env = concat(
    [
      { name = "AWS_REGION", value = data.aws_region.current.region },
      { name = "HF_HUB_OFFLINE", value = "1" },
      { name = "TOKENIZERS_PARALLELISM", value = "false" },
    ],
    var.delta_lock_table_arn == null ? [] : [
      { name = "AWS_S3_LOCKING_PROVIDER", value = "dynamodb" },
      { name = "DELTA_DYNAMO_TABLE_NAME", value = element(split("/", var.delta_lock_table_arn), 1) },
    ],
  )

  # Ray uses /dev/shm for its object store; the container default (64 MiB) is far too small.
  shm_volume = { name = "dshm", emptyDir = { medium = "Memory" } }
  shm_mount  = { name = "dshm", mountPath = "/dev/shm" }

  head_group = {
    rayStartParams = { "dashboard-host" = "0.0.0.0", "num-cpus" = "0" }
    template = {
      spec = {
        serviceAccountName = kubernetes_service_account_v1.ray.metadata[0].name
        nodeSelector       = var.cpu_node_selector
        volumes            = [local.shm_volume]
        containers = [{
          name         = "ray-head"
          image        = var.head_image
          env          = local.pod_env
          volumeMounts = [local.shm_mount]
          resources = {
            requests = { cpu = var.head_resources.cpu, memory = var.head_resources.memory }
            limits   = { cpu = var.head_resources.cpu, memory = var.head_resources.memory }
          }
          ports = [
            { containerPort = 6379, name = "gcs" },
            { containerPort = 8265, name = "dashboard" },
            { containerPort = 10001, name = "client" },
          ]
        }]
      }
    }
  }

  cpu_group = {
    groupName      = "cpu"
    replicas       = var.cpu_worker.min_replicas
    minReplicas    = var.cpu_worker.min_replicas
    maxReplicas    = var.cpu_worker.max_replicas
    rayStartParams = {}
    template = {
      spec = {
        serviceAccountName = kubernetes_service_account_v1.ray.metadata[0].name
        nodeSelector       = var.cpu_node_selector
        volumes            = [local.shm_volume]
        containers = [{
          name         = "ray-worker"
          image        = var.head_image
          env          = local.pod_env
          volumeMounts = [local.shm_mount]
          resources = {
            requests = { cpu = var.cpu_worker.cpu, memory = var.cpu_worker.memory }
            limits   = { cpu = var.cpu_worker.cpu, memory = var.cpu_worker.memory }
          }
        }]
      }
    }
  }

  gpu_group = {
    groupName      = "gpu"
    replicas       = var.gpu_worker.min_replicas
    minReplicas    = var.gpu_worker.min_replicas
    maxReplicas    = var.gpu_worker.max_replicas
    rayStartParams = {}
    template = {
      spec = {
        serviceAccountName = kubernetes_service_account_v1.ray.metadata[0].name
        nodeSelector       = var.gpu_node_selector
        tolerations        = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]
        volumes            = [local.shm_volume]
        containers = [{
          name         = "ray-worker"
          image        = var.gpu_image
          env          = local.pod_env
          volumeMounts = [local.shm_mount]
          resources = {
            requests = { cpu = var.gpu_worker.cpu, memory = var.gpu_worker.memory, "nvidia.com/gpu" = var.gpu_worker.gpus }
            limits   = { cpu = var.gpu_worker.cpu, memory = var.gpu_worker.memory, "nvidia.com/gpu" = var.gpu_worker.gpus }
          }
        }]
      }
    }
  }

  ray_cluster_spec = {
    rayVersion              = var.ray_version
    enableInTreeAutoscaling = true
    autoscalerOptions       = { idleTimeoutSeconds = 600 }
    headGroupSpec           = local.head_group
    workerGroupSpecs        = [local.cpu_group, local.gpu_group]
  }
}

resource "kubernetes_namespace_v1" "ray" {
  metadata {
    name   = var.namespace
    labels = { "app.kubernetes.io/part-of" = "b2ner" }
  }
  depends_on = [terraform_data.addons]
}

resource "kubernetes_service_account_v1" "ray" {
  metadata {
    name      = "ray"
    namespace = kubernetes_namespace_v1.ray.metadata[0].name
  }
}

# Orders the Kubernetes resources after the EKS add-ons without a module-level depends_on.
resource "terraform_data" "addons" {
  input = var.depends_on_addons
}

resource "helm_release" "kuberay_operator" {
  name             = "kuberay-operator"
  repository       = "https://ray-project.github.io/kuberay-helm/"
  chart            = "kuberay-operator"
  version          = var.kuberay_operator_version
  namespace        = "kuberay-system"
  create_namespace = true
  values = [yamlencode({
    nodeSelector = var.cpu_node_selector
  })]
  depends_on = [terraform_data.addons]
}

resource "helm_release" "nvidia_device_plugin" {
  name             = "nvidia-device-plugin"
  repository       = "https://nvidia.github.io/k8s-device-plugin"
  chart            = "nvidia-device-plugin"
  version          = var.nvidia_device_plugin_version
  namespace        = "nvidia-device-plugin"
  create_namespace = true
  values = [yamlencode({
    # No node-feature-discovery here: select the GPU nodes by our own label instead of the chart's
    # default affinity on NFD labels, and tolerate their taint.
    affinity     = null
    nodeSelector = var.gpu_node_selector
    tolerations  = [{ key = "nvidia.com/gpu", operator = "Exists", effect = "NoSchedule" }]
  })]
  depends_on = [terraform_data.addons]
}

resource "helm_release" "ray_cluster" {
  name      = var.ray_cluster_name
  chart     = "${path.module}/chart"
  namespace = kubernetes_namespace_v1.ray.metadata[0].name
  values = [yamlencode({
    name = var.ray_cluster_name
    spec = local.ray_cluster_spec
  })]
  depends_on = [helm_release.kuberay_operator, helm_release.nvidia_device_plugin, aws_eks_pod_identity_association.ray]
}
