/**
 * The OpenTelemetry SDK as the configuration asks for it: a tracer provider
 * with the service's resource and sampler, batching spans to an OTLP/HTTP
 * exporter. Nothing is registered globally: several gateways share a process
 * in tests, and nothing but the gateway's own code makes spans.
 */
import { ExportResultCode, type ExportResult } from '@opentelemetry/core'
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http'
import { resourceFromAttributes } from '@opentelemetry/resources'
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions'
import {
  AlwaysOffSampler, AlwaysOnSampler, BatchSpanProcessor, ParentBasedSampler, TraceIdRatioBasedSampler, TracerProvider,
  type ReadableSpan, type Sampler, type SpanExporter,
} from '@opentelemetry/sdk-trace'
import type { TracingConfig } from '../config.js'

/** The specification's samplers by their `OTEL_TRACES_SAMPLER` names. */
export function samplerFor (name: TracingConfig['sampler'], ratio: number): Sampler {
  switch (name) {
    case 'always_on': return new AlwaysOnSampler()
    case 'always_off': return new AlwaysOffSampler()
    case 'traceidratio': return new TraceIdRatioBasedSampler(ratio)
    case 'parentbased_always_on': return new ParentBasedSampler({ root: new AlwaysOnSampler() })
    case 'parentbased_always_off': return new ParentBasedSampler({ root: new AlwaysOffSampler() })
    case 'parentbased_traceidratio': return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio) })
  }
}

/** Reports batches the exporter could not deliver (the SDK's own diagnostics are off), then passes the result on. */
class ReportingExporter implements SpanExporter {
  constructor (private readonly inner: SpanExporter, private readonly onFailure: (error: Error | undefined) => void) {}

  export (spans: ReadableSpan[], resultCallback: (result: ExportResult) => void): void {
    this.inner.export(spans, (result) => {
      if (result.code !== ExportResultCode.SUCCESS) this.onFailure(result.error)
      resultCallback(result)
    })
  }

  shutdown (): Promise<void> {
    return this.inner.shutdown()
  }

  forceFlush (): Promise<void> {
    return this.inner.forceFlush?.() ?? Promise.resolve()
  }
}

export interface TracerProviderOptions {
  /** A batch of spans could not be sent (collector down, refused, too slow). */
  onExportFailed: (error: Error | undefined) => void
}

/**
 * The provider, exporting to `config.endpoint` as OTLP/HTTP JSON. The exporter still reads its
 * transport settings from the environment itself (headers, timeout, compression, certificates).
 */
export function createTracerProvider (config: TracingConfig, options: TracerProviderOptions): TracerProvider {
  const exporter = new ReportingExporter(new OTLPTraceExporter({ url: config.endpoint }), options.onExportFailed)
  return new TracerProvider({
    resource: resourceFromAttributes({ ...config.resourceAttributes, [ATTR_SERVICE_NAME]: config.serviceName }),
    sampler: samplerFor(config.sampler, config.samplerRatio),
    // A path or a header value is never long, but nothing a client sends may grow a span without bound.
    spanLimits: { attributeValueLengthLimit: 2048 },
    spanProcessors: [new BatchSpanProcessor({ exporter, scheduledDelayMillis: config.batchDelayMs })],
  })
}
