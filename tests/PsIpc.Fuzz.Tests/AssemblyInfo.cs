// The fuzz targets run one after another: each gets the machine for its share of PSIPC_FUZZ_SECONDS, and the
// shared-memory targets set PSIPC_SHM_DIR for the whole process.
[assembly: Xunit.CollectionBehavior(DisableTestParallelization = true)]
