{{- define "datapool.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "datapool.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* "<fullname>-<component>"; call with (dict "ctx" $ "component" "embedder") */}}
{{- define "datapool.componentName" -}}
{{- printf "%s-%s" (include "datapool.fullname" .ctx | trunc 40 | trimSuffix "-") .component }}
{{- end }}

{{- define "datapool.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: datapool
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
{{ include "datapool.selectorLabels" . }}
{{- end }}

{{- define "datapool.selectorLabels" -}}
app.kubernetes.io/name: {{ include "datapool.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "datapool.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "datapool.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* image reference; call with (dict "ctx" $ "override" .Values.embedder.image) */}}
{{- define "datapool.image" -}}
{{- $img := merge (deepCopy (.override | default dict)) .ctx.Values.image }}
{{- printf "%s:%s" $img.repository $img.tag }}
{{- end }}

{{/* Checks run once per render: refuse values that would deploy something insecure or broken. */}}
{{- define "datapool.validate" -}}
{{- if and .Values.embedder.autoscaling.enabled (gt (int .Values.embedder.autoscaling.minReplicas) (int .Values.embedder.autoscaling.maxReplicas)) }}
{{- fail (printf "embedder.autoscaling: minReplicas (%v) is above maxReplicas (%v)" .Values.embedder.autoscaling.minReplicas .Values.embedder.autoscaling.maxReplicas) }}
{{- end }}
{{- if not (has .Values.mesh.kind (list "linkerd" "istio")) }}
{{- fail (printf "mesh.kind must be linkerd or istio, got %q" .Values.mesh.kind) }}
{{- end }}
{{- if not .Values.secrets.internalToken.existingSecret }}
{{- fail "secrets.internalToken.existingSecret: name a Secret holding the internal token (kubectl create secret generic datapool-internal --from-literal=token=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))'))" }}
{{- end }}
{{- if and .Values.tls.enabled (not .Values.tls.existingSecret) }}
{{- fail "tls.existingSecret: name a Secret holding tls.crt, tls.key and ca.crt (a cert-manager Certificate's Secret, or: kubectl create secret generic datapool-tls --from-file=tls.crt --from-file=tls.key --from-file=ca.crt)" }}
{{- end }}
{{- if and (not .Values.secrets.apiToken.existingSecret) (not .Values.secrets.allowUnauthenticated) }}
{{- fail "secrets.apiToken.existingSecret: name a Secret holding the clients' API token, or set secrets.allowUnauthenticated=true (sandbox only)" }}
{{- end }}
{{- end }}

{{/* Pod-level pieces shared by every workload; call with (dict "ctx" $ "component" "x" "values" .Values.x) */}}
{{- define "datapool.podMeta" -}}
{{- $labels := merge (fromYaml (include "datapool.selectorLabels" .)) (deepCopy (.ctx.Values.podLabels | default dict)) }}
{{- $annotations := deepCopy (.ctx.Values.podAnnotations | default dict) }}
{{- if .ctx.Values.mesh.enabled }}
{{- if eq .ctx.Values.mesh.kind "linkerd" }}
{{- $_ := set $annotations "linkerd.io/inject" "enabled" }}
{{- /* The services dial each other at start; the proxy must be up first. */}}
{{- $_ := set $annotations "config.linkerd.io/proxy-await" "enabled" }}
{{- else }}
{{- $_ := set $labels "sidecar.istio.io/inject" "true" }}
{{- $_ := set $annotations "proxy.istio.io/config" "{\"holdApplicationUntilProxyStarts\": true}" }}
{{- end }}
{{- end }}
labels:
  {{- toYaml $labels | nindent 2 }}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{- define "datapool.podSpecCommon" -}}
serviceAccountName: {{ include "datapool.serviceAccountName" .ctx }}
# No workload talks to the Kubernetes API (IRSA/workload identity mount their own tokens).
automountServiceAccountToken: false
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
{{- with .ctx.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* Native gRPC probes on the standard health service; call with (dict "ctx" $ "port" N "startup" .Values.x.startupProbe).
With TLS they ask the plaintext health port (--health-port): the kubelet's gRPC probe cannot speak TLS. */}}
{{- define "datapool.grpcProbes" -}}
{{- $port := .port }}
{{- if and .ctx .ctx.Values.tls.enabled }}
{{- $port = .ctx.Values.tls.healthPort }}
{{- end }}
startupProbe:
  grpc:
    port: {{ $port }}
  periodSeconds: {{ .startup.periodSeconds }}
  failureThreshold: {{ .startup.failureThreshold }}
readinessProbe:
  grpc:
    port: {{ $port }}
  periodSeconds: 10
  timeoutSeconds: 5
  failureThreshold: 3
livenessProbe:
  grpc:
    port: {{ $port }}
  periodSeconds: 20
  timeoutSeconds: 5
  failureThreshold: 3
{{- end }}

{{/* Environment every service container gets. */}}
{{- define "datapool.env" -}}
- name: PYTHONUNBUFFERED
  value: "1"
- name: DATAPOOL_INTERNAL_TOKEN_FILE
  value: /var/run/secrets/datapool/internal/token
{{- if .Values.tracing.enabled }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ required "tracing.otlpEndpoint: the OTLP/gRPC collector the services send spans to, e.g. http://otel-collector.monitoring:4317" .Values.tracing.otlpEndpoint | quote }}
{{- end }}
{{- end }}

{{- define "datapool.envFrom" -}}
{{- with .Values.secrets.cloudCredentials.existingSecret }}
envFrom:
  - secretRef:
      name: {{ . }}
{{- end }}
{{- end }}

{{/* Mounts and volumes every service container gets: /tmp, /cache ($XDG_CACHE_HOME in the image;
the embedders' TensorRT engines) and the internal token. Call with (dict "ctx" $ "values" .Values.x). */}}
{{- define "datapool.commonMounts" -}}
- name: tmp
  mountPath: /tmp
- name: cache
  mountPath: /cache
- name: internal-token
  mountPath: /var/run/secrets/datapool/internal
  readOnly: true
{{- if .ctx.Values.tls.enabled }}
- name: tls
  mountPath: /var/run/secrets/datapool/tls
  readOnly: true
{{- end }}
{{- end }}

{{- define "datapool.commonVolumes" -}}
{{- $cache := .values.modelCache | default dict }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .ctx.Values.tmpSizeLimit }}
- name: cache
  {{- if $cache.existingClaim }}
  persistentVolumeClaim:
    claimName: {{ $cache.existingClaim }}
  {{- else }}
  emptyDir:
    sizeLimit: {{ $cache.sizeLimit | default "256Mi" }}
  {{- end }}
- name: internal-token
  secret:
    secretName: {{ .ctx.Values.secrets.internalToken.existingSecret }}
    defaultMode: 0440
    items:
      - key: {{ .ctx.Values.secrets.internalToken.key }}
        path: token
{{- with .ctx.Values.tls.existingSecret }}
{{- if $.ctx.Values.tls.enabled }}
- name: tls
  secret:
    secretName: {{ . }}
    defaultMode: 0440
    items:
      - {key: tls.crt, path: tls.crt}
      - {key: tls.key, path: tls.key}
      - {key: ca.crt, path: ca.crt}
{{- end }}
{{- end }}
{{- end }}

{{/* TLS flags of a gRPC service (services/common/tls_args.py); call with (dict "ctx" $ "component" "x").
The selector and the embedders serve only callers with a certificate from ca.crt (the scheduler's:
mutual TLS); the scheduler checks theirs against it. */}}
{{- define "datapool.tlsArgs" -}}
{{- if .ctx.Values.tls.enabled }}
- --tls-cert=/var/run/secrets/datapool/tls/tls.crt
- --tls-key=/var/run/secrets/datapool/tls/tls.key
- --tls-ca=/var/run/secrets/datapool/tls/ca.crt
- --health-port={{ .ctx.Values.tls.healthPort }}
{{- if and (eq .component "scheduler") .ctx.Values.tls.serverName }}
- --tls-server-name={{ .ctx.Values.tls.serverName }}
{{- end }}
{{- end }}
{{- end }}

{{/* Logs, metrics and traces of a gRPC service (services/common/observability.py). */}}
{{- define "datapool.observabilityArgs" -}}
- --log-format={{ .Values.logFormat }}
{{- if .Values.metrics.enabled }}
- --metrics-port={{ .Values.metrics.port }}
{{- end }}
{{- if .Values.tracing.enabled }}
- --otel
{{- end }}
{{- end }}

{{- define "datapool.metricsPort" -}}
{{- if .Values.metrics.enabled }}
- name: metrics
  containerPort: {{ .Values.metrics.port }}
  protocol: TCP
{{- end }}
{{- end }}

{{/* The address the scheduler dials for a component: round_robin over a headless Service, or the mesh. */}}
{{- define "datapool.target" -}}
{{- $name := include "datapool.componentName" . }}
{{- $ns := .ctx.Release.Namespace }}
{{- $domain := .ctx.Values.clusterDomain }}
{{- if .ctx.Values.mesh.enabled }}
{{- printf "%s.%s.svc.%s:%v" $name $ns $domain .port }}
{{- else }}
{{- printf "dns:///%s-headless.%s.svc.%s:%v" $name $ns $domain .port }}
{{- end }}
{{- end }}

{{/* The Services of a backend component (selector, embedder): a ClusterIP Service, and without a
mesh a headless one the scheduler's round_robin channel resolves to every ready pod. */}}
{{- define "datapool.services" -}}
{{- $name := include "datapool.componentName" . }}
{{- range $headless := (ternary (list false) (list false true) .ctx.Values.mesh.enabled) }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}{{ if $headless }}-headless{{ end }}
  labels:
    {{- include "datapool.labels" $ | nindent 4 }}
spec:
  {{- if $headless }}
  clusterIP: None
  {{- else }}
  type: ClusterIP
  {{- end }}
  selector:
    {{- include "datapool.selectorLabels" $ | nindent 4 }}
  ports:
    - name: grpc
      port: {{ $.port }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    {{- if and $.ctx.Values.metrics.enabled (not $headless) }}
    - name: metrics
      port: {{ $.ctx.Values.metrics.port }}
      targetPort: metrics
      protocol: TCP
    {{- end }}
{{- end }}
{{- end }}

{{- define "datapool.metricsIngress" -}}
{{- if .Values.metrics.enabled }}
- ports:
    - port: metrics
      protocol: TCP
  {{- with .Values.networkPolicy.metricsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end }}
