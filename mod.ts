/**
 * merba: MERba (arXiv 2506.14468) for micro-expression recognition on tfjs + WebGPU, in Deno.
 *
 * Re-exports only; each symbol is documented where it is defined.
 *
 * @module
 */

/** Picks webgpu when an adapter exists, else cpu; explicit override by option or MERBA_BACKEND. */
export { backendInfo, cpuKernelsInUse, describeCpuKernels, hasWebGPU, initBackend } from "./lib/backend.ts";
export type { BackendInfo, BackendName } from "./lib/backend.ts";

// --- Selective scan (lib/ops): the op with cpu + webgpu kernels and gradients ---
/** Mamba's selective scan as a differentiable tfjs op (cpu, wasm and WGSL kernels, forward + backward). */
export {
  CHUNKED_LANES_PER_STEP,
  CHUNKED_MIN_LENGTH,
  chunkedScanIsBetter,
  chunkLength,
  webgpuScanConfig,
} from "./lib/ops/selective_scan_webgpu.ts";
export { SELECTIVE_SCAN_BACKENDS, selectiveScan } from "./lib/ops/selective_scan.ts";
/** cpu/wasm scan loops: WebAssembly SIMD (default where available, n % 4 == 0) or JavaScript. */
export { getCpuScanImpl, setCpuScanImpl, simdScanAvailable } from "./lib/ops/selective_scan_cpu.ts";
export type { CpuScanImpl } from "./lib/ops/selective_scan_cpu.ts";
/** cpu/wasm layer kernels (linear, activations, LayerNorm, attention, convolutions): WebAssembly SIMD or JavaScript. */
export { getCpuLayerImpl, layerSimdOn, setCpuLayerImpl } from "./lib/layers/layer_simd.ts";
export type { CpuLayerImpl } from "./lib/layers/layer_simd.ts";
/** webgpu LayerNorm, GELU and linear layers: WGSL kernels (default) or tfjs ops. */
export { setWebGPULayerImpl, type WebGPULayerImpl } from "./lib/layers/fused_webgpu.ts";
export type {
  SelectiveScanKernelOptions,
  SelectiveScanOptions,
  SelectiveScanResult,
} from "./lib/ops/selective_scan.ts";
/** Hidden-attention matrices α[t, s] of a selective scan, [b, d, l, l] (for plots). */
export { scanHiddenAttention } from "./lib/ops/hidden_attention.ts";
export type { HiddenAttentionOptions } from "./lib/ops/hidden_attention.ts";
/** The tfjs-ops reference selective scan (slow; the oracle for tests and benchmarks). */
export { selectiveScanRef } from "./lib/ops/selective_scan_ref.ts";

// --- Visualisation (lib/viz): plotly figures for notebooks ---
/** Plotly MIME bundles, notebook display with live updates, standalone HTML and PNG/SVG export (Chromium). */
export {
  ChromiumNotFoundError,
  exportFigure,
  figureHtmlPage,
  findChromium,
  inJupyter,
  LiveFigure,
  PLOTLY_MIME,
  plotlyBundle,
  showFigure,
  toPlainFigure,
} from "./lib/viz/plotly.ts";
export type {
  ExportFigureOptions,
  MimeBundle,
  PlotlyFigure,
  PlotlyTrace,
  ShowFigureOptions,
} from "./lib/viz/plotly.ts";
/** Rich display of tensors and dataset samples via `Symbol.for("Jupyter.display")`. */
export { tensorBundle, viewSample, viewSampleRef, viewTensor } from "./lib/viz/display.ts";
/** Optical flow as Middlebury colour-wheel images. */
export { colorWheelImage, flowToRgb } from "./lib/viz/flow_color.ts";
/** Sample figures: frames, flow (colour wheel / arrows), strain; dataset input channels. */
export { datasetSampleFigure, flowArrowsTrace, sampleFigure } from "./lib/viz/sample.ts";
export type { SampleFigureInput, SampleFigureOptions } from "./lib/viz/sample.ts";
/** Scan-order drawings and the in-window receptive field of a scan set. */
export { receptiveFieldFigure, scanOrderFigure, scanReach } from "./lib/viz/scan_order.ts";
/** Attention figures: inter-window attention over the face, scan hidden attention per direction. */
export {
  regionMapFigure,
  scanAttentionFigure,
  scanAttentionFromExplain,
  windowAttentionFigure,
  windowAttentionFromExplain,
  windowAttentionMatrixFigure,
} from "./lib/viz/attention.ts";
export type { RegionMap, ScanAttention, WindowAttention } from "./lib/viz/attention.ts";
/** Dataset overview (samples per subject and class), metric bars, and grids of maps. */
export { datasetSummaryFigure, mapsFigure, metricsBarFigure } from "./lib/viz/dataset.ts";
export type { MapPanel, NamedMetrics } from "./lib/viz/dataset.ts";
/** Confusion-matrix heat map. */
export { confusionFigure } from "./lib/viz/confusion.ts";
/** Training curves, static or live (redrawn in place each epoch). */
export { LiveCurves, trainingCurvesFigure } from "./lib/viz/curves.ts";
export type { EpochRecord } from "./lib/viz/curves.ts";

// --- Data types (lib/data/types.ts) and image helpers (lib/data/image.ts) ---
/** Gray/RGB images, flow fields, label hierarchies, samples on disk, in-memory flow datasets, DatasetError. */
export { DatasetError } from "./lib/data/types.ts";
export type {
  ClassHierarchy,
  Flow,
  FlowDataset,
  GrayImage,
  RgbImage,
  SampleRef,
  SampleSource,
} from "./lib/data/types.ts";
/** Grayscale conversion (BT.601), replicate-border crop, bilinear and area resizing. */
export { crop, resizeArea, resizeBilinear, toFloat, toGray } from "./lib/data/image.ts";
// --- Images (lib/data/image_io.ts): frames on disk ---
/** Image files: PNG/JPEG/BMP decoding, grayscale and RGB reads, PNG encoding and writing. */
export { decodeImage, encodePng, readGray, readImage, writePng } from "./lib/data/image_io.ts";

// --- Optical flow (lib/data): TV-L1, Farneback, optical strain, network input ---
/** Dual TV-L1 optical flow in TypeScript (OpenCV 4.6 algorithm and defaults); reusable solver per image size. */
export {
  DualTVL1,
  opticalFlowTVL1,
  resolveTVL1Options,
  TVL1_DEFAULTS,
  tvl1PyramidSizes,
} from "./lib/data/optical_flow.ts";
export type { TVL1Options, TVL1Params } from "./lib/data/optical_flow.ts";
/** The same TV-L1 on WebGPU (one solve workgroup per pair, exact early stop; batches of pairs in parallel). */
export { opticalFlowTVL1WebGPU, opticalFlowTVL1WebGPUBatch, tvl1Device } from "./lib/data/tvl1_webgpu.ts";
export type { TVL1WebGPUOptions } from "./lib/data/tvl1_webgpu.ts";
/** Farneback optical flow through opencv.js (lazy-loaded), HTNet's parameters as defaults. */
export { FARNEBACK_DEFAULTS, loadOpenCv, opticalFlowFarneback } from "./lib/data/farneback.ts";
export type { FarnebackOptions } from "./lib/data/farneback.ts";
/** Optical strain sqrt(u_x² + v_y² + ½(u_y + v_x)²) with numpy.gradient (or forward/backward) differences. */
export { opticalStrain } from "./lib/data/strain.ts";
export type { StrainDifferences, StrainOptions } from "./lib/data/strain.ts";
/** Flow -> [size, size, 3] (u, v, strain) input, per-channel min-max to [0, 1], area-resized. */
export { flowToInput } from "./lib/data/flow_input.ts";
export type { FlowInputOptions } from "./lib/data/flow_input.ts";

// --- Datasets, protocols, LOSO folds, flow cache (lib/data) ---
/** Dataset loaders -> SampleRef[] + warnings: CASME II, SAMM, SMIC-HS, CAS(ME)^3 part A, MEGC2019 composite. */
export { CASME2_EMOTIONS, CASME2_MEB_FIXES, loadCasme2 } from "./lib/data/datasets/casme2.ts";
export type { Casme2Options } from "./lib/data/datasets/casme2.ts";
export { loadSamm, SAMM_EMOTIONS, SAMM_MEB_FIXES } from "./lib/data/datasets/samm.ts";
export type { SammOptions } from "./lib/data/datasets/samm.ts";
export { loadSmic, SMIC_EMOTIONS, smicCanonical } from "./lib/data/datasets/smic.ts";
export type { SmicOptions } from "./lib/data/datasets/smic.ts";
export { CASME3_EMOTIONS, CASME3_MEB_FIXES, loadCasme3 } from "./lib/data/datasets/casme3.ts";
export type { Casme3Options } from "./lib/data/datasets/casme3.ts";
export { loadComposite, MEGC_CLASSES, readCompositeList } from "./lib/data/datasets/composite.ts";
export type { CompositeListRow, CompositeParts } from "./lib/data/datasets/composite.ts";
/** Loader building blocks: label tables (xlsx/csv), numbered frame folders, apex rules. */
export { listFrames, maxFlowApex, middleApex, readTable } from "./lib/data/datasets/common.ts";
export type {
  ApexContext,
  ApexOptions,
  ApexRule,
  FrameFile,
  FrameScorer,
  LabelFix,
  LoaderOptions,
  LoadResult,
} from "./lib/data/datasets/common.ts";
/** Class protocols as data (5/3-class, CAS(ME)^3 7/4/3, MEGC2019, synthetic) and their application. */
export {
  applyProtocol,
  flatHierarchy,
  getProtocol,
  hierarchy,
  listProtocols,
  MEGC_EMOTION_CLASS,
  MEGC_EXCLUDED_BY_DATASET,
  megcClassOf,
  PROTOCOLS,
  registerProtocol,
  validateProtocol,
} from "./lib/data/protocols.ts";
export type { Protocol, ProtocolResult } from "./lib/data/protocols.ts";
/** Leave-one-subject-out folds by dataset-prefixed subject; fold selection and "i/n" shards. */
export { losoSplits, parseShard, selectFolds } from "./lib/data/loso.ts";
export type { FoldSelection, LosoFold } from "./lib/data/loso.ts";
/** Flow dataset file format (MERBAFLW v1) and the per-sample flow cache. */
export {
  decodeFlowDataset,
  encodeFlowDataset,
  FLOW_DATASET_MAGIC,
  FLOW_DATASET_VERSION,
  FlowCache,
  loadFlowDataset,
  saveFlowDataset,
} from "./lib/data/cache.ts";
/** Samples -> FlowDataset (onset -> apex flow, cached per sample); max-flow apex scorer. */
export { flowMagnitudeScorer, preprocessDataset } from "./lib/data/preprocess.ts";
export type {
  FaceCrop,
  FlowMethod,
  InputBuilder,
  PreprocessOptions,
  PreprocessProgress,
  PreprocessStats,
} from "./lib/data/preprocess.ts";
/** The `deno task preprocess` command line as a function (returns the exit code). */
export { preprocessMain } from "./lib/data/preprocess_cli.ts";

// --- Embedded synthetic dataset, faces and facial regions (lib/data) ---
/** Synthetic micro-expression generator (CASME II-like tree), the shipped default FlowDataset, its classes, and
 * each sample's true face landmarks in input coordinates. */
export {
  ASTRONAUT_PATH,
  computeSyntheticFlowDataset,
  DATA_DIR,
  generateSyntheticDataset,
  loadSyntheticDefault,
  loadSyntheticLandmarks,
  loadSyntheticSamples,
  planSyntheticDataset,
  renderSyntheticSample,
  resolveSyntheticOptions,
  SYNTHETIC_CLASSES,
  SYNTHETIC_DEFAULTS,
  SYNTHETIC_DIR,
  SYNTHETIC_FLOW_FILE,
  syntheticLandmarks,
  writeSyntheticFlowDataset,
} from "./lib/data/synthetic.ts";
export type {
  LoadSyntheticOptions,
  Pose,
  RenderedSample,
  SyntheticOptions,
  SyntheticPlan,
  SyntheticSample,
  SyntheticSubject,
  SyntheticSummary,
} from "./lib/data/synthetic.ts";
/** Action-unit motion fields and the class recipes of the synthetic dataset. */
export { AU_BLOBS, formatAus, motionField, sampleAus, SYNTHETIC_RECIPES } from "./lib/data/synthetic_aus.ts";
export type { ActiveAu, AuSamplingOptions, ClassRecipe, MotionField } from "./lib/data/synthetic_aus.ts";
/** Parametric and astronaut-based synthetic faces; the astronaut portrait's 68 landmarks. */
export {
  anchorsFromLandmarks68,
  ASTRONAUT_LANDMARKS_68,
  astronautFace,
  parametricFace,
  randomAstronautParams,
  randomFaceParams,
} from "./lib/data/synthetic_face.ts";
export type { FaceAnchors, FaceModel, FaceVariation, Point } from "./lib/data/synthetic_face.ts";
/** CASME II-layout coding sheet writer (deterministic .xlsx). */
export { CASME2_CODING_HEADER, encodeCasme2Coding } from "./lib/data/synthetic_coding.ts";
export type { CodingRow } from "./lib/data/synthetic_coding.ts";
/** Offline face detection + 68 landmarks (face-api), eye-based crop, canonical landmark layout. */
export {
  CANONICAL_LANDMARKS_68,
  canonicalLandmarks,
  cropFace,
  detectFace,
  detectFaces,
  eyeCentres,
  eyeCrop,
  fivePoints,
  loadFaceModels,
  toCropCoords,
} from "./lib/data/faces.ts";
export type { CropTransform, DetectOptions, EyeCropOptions, FaceDetection } from "./lib/data/faces.ts";
/** Named facial regions as masks in input coordinates; window-grid labelling by dominant region. */
export { defaultFaceRegions, faceRegions, labelWindows, REGION_NAMES } from "./lib/data/regions.ts";
export type { FaceRegions, RegionName, WindowLabels } from "./lib/data/regions.ts";
/** HTNet's 4-region 14x14 mosaic of a 28x28 input (HTNet's swapped axes or corrected). */
export { defaultMosaicPoints, htnetMosaic, htnetMosaicBatch } from "./lib/data/mosaic.ts";
export type { MosaicAxes } from "./lib/data/mosaic.ts";

// --- Training and LOSO evaluation (lib/train) ---
/** UF1 / UAR / accuracy / confusion on pooled predictions, per class and per group (scikit-learn-exact). */
export { computeMetrics, metricsTable } from "./lib/train/metrics.ts";
export type {
  BasicMetrics,
  ClassMetrics,
  Metrics,
  MetricsOptions,
  UnionLabelMetrics,
} from "./lib/train/metrics.ts";
/** AdamW with decay / no-decay parameter groups (tfjs has none), global-norm gradient clipping. */
export { AdamW, clipByGlobalNorm, globalNorm } from "./lib/train/optimizer.ts";
export type { AdamWOptions, AdamWState, WeightGroups } from "./lib/train/optimizer.ts";
/** Exponential moving average of weights (TrainOptions.ema). */
export { WeightEma } from "./lib/train/ema.ts";
/** Linear warmup + cosine learning-rate schedule (per step). */
export { warmupCosine } from "./lib/train/schedule.ts";
export type { WarmupCosineOptions } from "./lib/train/schedule.ts";
/** Flow-valid augmentations: horizontal flip (mirror + negate u), translation, magnitude scale. */
export {
  augmentBatch,
  defaultAugment,
  hflipFlow,
  resolveAugment,
  translateFlow,
} from "./lib/train/augment.ts";
export type { AugmentOptions } from "./lib/train/augment.ts";
/** Seeded RNG (mulberry32), per-key seed derivation, Fisher-Yates shuffle. */
export { deriveSeed, mulberry32, shuffleInPlace } from "./lib/train/random.ts";
export type { Rng } from "./lib/train/random.ts";
/** WebGPU errors reported as device events (failed kernels), and the error trainModel stops with. */
export {
  watchActiveWebGPUDevice,
  watchWebGPUErrors,
  webgpuErrorCount,
  webgpuErrorsSince,
  WebGPUValidationError,
} from "./lib/ops/webgpu_errors.ts";
export type { WebGPUErrorRecord } from "./lib/ops/webgpu_errors.ts";
/** The training loop with callbacks for live plots, NaN stop, flat memory; batched prediction. */
export {
  balancedClassWeights,
  DEFAULT_TRAIN,
  defaultTrainOptions,
  gatherX,
  predictIndices,
  TrainingDivergedError,
  trainModel,
} from "./lib/train/trainer.ts";
export type {
  EpochLog,
  EvalLog,
  EvalSet,
  StepLog,
  TrainableModel,
  TrainCallbacks,
  TrainOptions,
  TrainResult,
  TrainRunOptions,
} from "./lib/train/trainer.ts";
/** Atomic training checkpoints (last good epoch always loadable). */
export { checkpointHook, loadLatestCheckpoint, saveCheckpoint } from "./lib/train/checkpoint.ts";
export type { CheckpointState } from "./lib/train/checkpoint.ts";
/** LOSO runner: pooled predictions, honest protocol, per-fold resume, shards. */
export {
  buildRunSpec,
  collectVersions,
  epochsForStepBudget,
  resolveEvaluation,
  runFold,
  runLoso,
} from "./lib/train/loso.ts";
export type {
  LosoCallbacks,
  LosoModel,
  LosoOptions,
  ModelFactory,
  StepBudgetEpochs,
} from "./lib/train/loso.ts";
/** MERba model factory for LOSO folds (dataset classes, input size and fold seed filled in). */
export { merbaFactory } from "./lib/train/merba_factory.ts";
/** LOSO results files: run spec, fold records, pooling, merge of shards, markdown summary. */
export {
  mergeRuns,
  poolFolds,
  protocolStatement,
  readAllFolds,
  RunDirError,
  summaryMarkdown,
  writeResults,
} from "./lib/train/results.ts";
export type { EvaluationSpec, FoldRecord, LosoResults, RunSpec, Versions } from "./lib/train/results.ts";
/** Terminal progress bar with rate and ETA (CLI tools: preprocess, synth, train). */
export { formatDuration, ProgressBar, renderProgress } from "./lib/progress.ts";
export type { ProgressBarOptions, ProgressSink } from "./lib/progress.ts";

// ---- model (lib/ops/windows.ts, lib/ops/scan_orders.ts, lib/layers/, lib/models/) ----
/** Window partition/reverse (MambaVision token order, zero padding) and the cached index-map gather they use. */
export {
  applyIndexMap,
  cachedIndexMap,
  windowGrid,
  windowPartition,
  windowReverse,
} from "./lib/ops/windows.ts";
export type { IndexMap, WindowGrid } from "./lib/ops/windows.ts";
/** Scan orders as token permutations: named sets (raster, vmamba4, bilateral3 default, axes2) and custom lists. */
export {
  ALL_SCAN_ORDERS,
  DEFAULT_SCAN_SET,
  invertPermutation,
  parseScanOrder,
  permuteTokens,
  resolveScanSet,
  SCAN_SETS,
  scanOrderLabel,
  scanPermutation,
  unpermutePairs,
  unpermuteTokens,
} from "./lib/ops/scan_orders.ts";
export type { ScanOrder, ScanSetName, ScanSetSpec } from "./lib/ops/scan_orders.ts";
/** MambaVision mixer layer (exact MambaVision forward, both dt-bias behaviours, multi-scan option). */
export { MambaVisionMixer, mambaVisionMixer, mergeOrders } from "./lib/layers/mamba_vision_mixer.ts";
export type { MambaVisionMixerArgs, MixerTrace, ScanMerge } from "./lib/layers/mamba_vision_mixer.ts";
/** MERba local extractor block (pre-norm multi-scan mixer + MLP on windows). */
export { dropPath, LocalExtractor } from "./lib/layers/local_extractor.ts";
export type { LocalExtractorArgs, MixerOptions } from "./lib/layers/local_extractor.ts";
/** Inter-window attention (windowToken default, full, none) returning per-head maps. */
export { InterWindowAttention } from "./lib/layers/inter_window_attention.ts";
export type {
  InterWindowAttentionArgs,
  InterWindowMode,
  InterWindowOutput,
} from "./lib/layers/inter_window_attention.ts";
/** LGFI stage: windows -> local extractors -> inter-window attention -> reverse -> downsample. */
export { LgfiStage } from "./lib/layers/lgfi_stage.ts";
export type { LgfiStageArgs, LgfiStageOutput, StageDropPath } from "./lib/layers/lgfi_stage.ts";
/** Flow stem (conv3x3 + BN + ReLU stack) and the stride-2 downsampling conv. */
export { Downsample, FlowStem } from "./lib/layers/stem.ts";
export type { DownsampleArgs, FlowStemArgs } from "./lib/layers/stem.ts";
/** BatchNorm over the channel axis with moving statistics. */
export { BatchNorm } from "./lib/layers/batch_norm.ts";
/** Dual-granularity head: coarse + fine logits, CE_fine + λ·CE_coarse, argmax or masked inference. */
export { checkHierarchy, DualGranularityHead } from "./lib/layers/dual_granularity_head.ts";
export type {
  DualGranularityHeadArgs,
  HeadOutput,
  LabelHierarchy,
} from "./lib/layers/dual_granularity_head.ts";
/** Base class of merba layers (seeded init, stable weight names, sublayers). */
export { hashSeed, MerbaLayer } from "./lib/layers/base.ts";
export type { MerbaLayerArgs, NamedWeight } from "./lib/layers/base.ts";
/** Fused layer ops (typed-array kernels on the cpu backend, tf ops elsewhere). */
export {
  fusedBatchNorm,
  fusedConv3x3,
  fusedDepthwiseConv1d,
  fusedGelu,
  fusedLayerNorm,
  fusedLinear,
  fusedSilu,
  fusedSoftmax,
} from "./lib/layers/fused.ts";
/** Opt-in XNNPACK (tfjs wasm backend) matmuls for the cpu backend's fused linear, conv3x3 and attention kernels. */
export { disableWasmMatmul, enableWasmMatmul, wasmMatmulEnabled } from "./lib/layers/fused_matmul.ts";
/** MERba model: createMerba(name | config, overrides), variant registry, explain() maps, summary(). */
export { createMerba, MerbaModel } from "./lib/models/merba.ts";
export type {
  BlockScanAttention,
  ExplainResult,
  ScanBlockSelection,
  StageAttention,
} from "./lib/models/merba.ts";
/** MERba configuration: defaults (= merba-tiny), registry, validation. */
export {
  CASME2_HIERARCHY,
  defaultMerbaConfig,
  listModels,
  registerMerbaVariant,
  resolveMerbaConfig,
  validateMerbaConfig,
} from "./lib/models/config.ts";
export type { MerbaConfig, MerbaOverrides, MixerConfig, StageConfig } from "./lib/models/config.ts";
/** Save/load a model (config + weights, bit-identical) with a Deno file-system tfjs IO handler. */
export { fileSystemIO, loadMerba, ModelFileError, saveMerba } from "./lib/models/io.ts";
/** PyTorch MambaVision mixer state-dict import. */
export { loadTorchStateDict } from "./lib/models/torch_import.ts";
export type { TorchStateDict, TorchTensor } from "./lib/models/torch_import.ts";
