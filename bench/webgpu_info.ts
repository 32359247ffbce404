/**
 * Prints the WebGPU adapter this Deno sees (vendor, device, description, features and the limits that matter
 * to merba's kernels), or says that there is none. No npm imports, so it runs anywhere Deno does.
 *
 *   deno run bench/webgpu_info.ts        (DENO_WEBGPU_BACKEND=vulkan|gl picks the native API)
 *
 * Exit status 1 when no adapter is found.
 *
 * @module
 */
const adapter = await navigator.gpu?.requestAdapter({ powerPreference: "high-performance" });
if (!adapter) {
  console.log("no WebGPU adapter (navigator.gpu.requestAdapter() returned null)");
  Deno.exit(1);
}
const { info, limits } = adapter;
console.log(JSON.stringify(
  {
    info: {
      vendor: info.vendor,
      architecture: info.architecture,
      device: info.device,
      description: info.description,
    },
    features: [...adapter.features].sort(),
    limits: {
      maxStorageBuffersPerShaderStage: limits.maxStorageBuffersPerShaderStage,
      maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize,
      maxBufferSize: limits.maxBufferSize,
      maxComputeWorkgroupSizeX: limits.maxComputeWorkgroupSizeX,
      maxComputeInvocationsPerWorkgroup: limits.maxComputeInvocationsPerWorkgroup,
      maxComputeWorkgroupStorageSize: limits.maxComputeWorkgroupStorageSize,
      maxComputeWorkgroupsPerDimension: limits.maxComputeWorkgroupsPerDimension,
    },
  },
  null,
  1,
));
