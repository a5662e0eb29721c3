// gdal_MM: a GDAL raster driver that synthesises a modality on read with a MetaEarth-MM model.
// A thin layer: parsing the connection string / .mmvrt file and the open options, and GDAL's
// dataset and band classes; everything else is libmmgeo's virtual dataset and region renderer
// (libmmgeo/src/virtual.c, region.c). man/gdal_mm.7 and docs/driver.md describe it.
#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "cpl_minixml.h"
#include "cpl_string.h"
#include "gdal_priv.h"
#include "mmgeo.h"
#include "mmgeo_settings.h"

#ifndef MM_DEFAULT_MODEL
#define MM_DEFAULT_MODEL "models/default.safetensors"
#endif
#ifndef MM_PLUGIN_REL_DATADIR // from the plugin's directory to the installed data (CMakeLists.txt)
#define MM_PLUGIN_REL_DATADIR "../../share/metaearth-mm"
#endif

namespace {

// The default model: the one installed beside the plugin (<plugin dir>/MM_PLUGIN_REL_DATADIR,
// found from the plugin's own path, so that an installed prefix can be moved), else, from the
// build tree, the source tree's (MM_DEFAULT_MODEL).
const char *DefaultModel() {
    static std::string path;
    static std::once_flag once;
    std::call_once(once, [] {
        Dl_info info;
        if (dladdr(reinterpret_cast<void *>(&DefaultModel), &info) && info.dli_fname) {
            std::string dir = info.dli_fname;
            const size_t slash = dir.rfind('/');
            if (slash != std::string::npos) {
                const std::string p =
                    dir.substr(0, slash) + "/" MM_PLUGIN_REL_DATADIR "/default.safetensors";
                if (access(p.c_str(), F_OK) == 0) {
                    path = p;
                    return;
                }
            }
        }
        path = MM_DEFAULT_MODEL;
    });
    return path.c_str();
}

constexpr int BLOCK = 256;

class MMDataset;

class MMRasterBand final : public GDALRasterBand {
  public:
    MMRasterBand(MMDataset *ds, int band, GDALDataType type);
    CPLErr IReadBlock(int bx, int by, void *image) override;
    double GetNoDataValue(int *success) override;
    GDALColorInterp GetColorInterpretation() override;
    const char *GetUnitType() override;
    int GetOverviewCount() override;
    GDALRasterBand *GetOverview(int i) override;
    int GetMaskFlags() override;
    GDALRasterBand *GetMaskBand() override;
};

// The validity of the pixels when the source has a mask and no nodata value (mm_translate writes
// a per-dataset mask then).
class MMMaskBand final : public GDALRasterBand {
  public:
    explicit MMMaskBand(MMDataset *ds);
    CPLErr IReadBlock(int bx, int by, void *image) override;
};

class MMDataset final : public GDALDataset {
    friend class MMRasterBand;
    friend class MMMaskBand;
    mmgeo_virtual *virt = nullptr; // owned by the full-resolution dataset
    mmgeo_region *region = nullptr;
    bool owner = false;
    std::vector<MMDataset *> overviews;
    double gt[6] = {0, 1, 0, 0, 0, 1};
    bool has_gt = false;
    OGRSpatialReference srs, gcp_srs;
    std::vector<GDAL_GCP> gcps;
    std::string target;
    int spread_bands = 0; // SAMPLES=K: the last band is the spread
    // the block rendered last (all bands), for the other bands' reads of it
    std::mutex mtx;
    int last_bx = -1, last_by = -1;
    std::vector<double> last;
    std::vector<GByte> last_mask;
    MMMaskBand *mask_band = nullptr; // when the region has a mask

  public:
    MMDataset() {
        srs.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
        gcp_srs.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
    }
    ~MMDataset() override;
    static int Identify(GDALOpenInfo *info);
    static GDALDataset *Open(GDALOpenInfo *info);
    CPLErr GetGeoTransform(double *out) override {
        memcpy(out, gt, sizeof gt);
        return has_gt ? CE_None : CE_Failure;
    }
    const OGRSpatialReference *GetSpatialRef() const override {
        return has_gt && !srs.IsEmpty() ? &srs : nullptr;
    }
    int GetGCPCount() override { return static_cast<int>(gcps.size()); }
    const OGRSpatialReference *GetGCPSpatialRef() const override {
        return gcps.empty() || gcp_srs.IsEmpty() ? nullptr : &gcp_srs;
    }
    const GDAL_GCP *GetGCPs() override { return gcps.empty() ? nullptr : gcps.data(); }
    char **GetMetadataDomainList() override {
        return BuildMetadataDomainList(GDALDataset::GetMetadataDomainList(), TRUE, "MM_STATS",
                                       nullptr);
    }
    char **GetMetadata(const char *domain) override;
    const char *GetMetadataItem(const char *name, const char *domain) override {
        if (domain && EQUAL(domain, "MM_STATS"))
            return CSLFetchNameValue(GetMetadata("MM_STATS"), name);
        return GDALDataset::GetMetadataItem(name, domain);
    }

  private:
    CPLStringList stats_md;
    bool Init(mmgeo_virtual *v, int level, MMDataset *base);
    CPLErr Render(int bx, int by, int band, void *image);
};

MMDataset::~MMDataset() {
    for (auto *o : overviews)
        delete o;
    delete mask_band;
    if (owner && virt) {
        mmgeo_region_stats st;
        mmgeo_region_stats_get(region, &st);
        CPLDebug("MM",
                 "%s: %lld renders; windows: %lld computed in %lld processor calls, %lld from "
                 "memory, %lld from the SQLite cache, %lld without valid pixels; %lld cache errors",
                 GetDescription(), st.renders, st.computed, st.model_calls, st.mem_hits,
                 st.disk_hits, st.skipped, st.disk_errors);
        mmgeo_virtual_close(virt);
    }
    for (auto &g : gcps) {
        CPLFree(g.pszId);
        CPLFree(g.pszInfo);
    }
}

char **MMDataset::GetMetadata(const char *domain) {
    if (domain && EQUAL(domain, "MM_STATS")) {
        mmgeo_region_stats st;
        mmgeo_region_stats_get(region, &st);
        stats_md.Clear();
        stats_md.SetNameValue("RENDERS", CPLSPrintf("%lld", st.renders));
        stats_md.SetNameValue("WINDOWS_COMPUTED", CPLSPrintf("%lld", st.computed));
        stats_md.SetNameValue("PROCESSOR_CALLS", CPLSPrintf("%lld", st.model_calls));
        stats_md.SetNameValue("MEMORY_HITS", CPLSPrintf("%lld", st.mem_hits));
        stats_md.SetNameValue("DISK_HITS", CPLSPrintf("%lld", st.disk_hits));
        stats_md.SetNameValue("WINDOWS_SKIPPED", CPLSPrintf("%lld", st.skipped));
        stats_md.SetNameValue("CACHE_ERRORS", CPLSPrintf("%lld", st.disk_errors));
        return stats_md.List();
    }
    return GDALDataset::GetMetadata(domain);
}

bool MMDataset::Init(mmgeo_virtual *v, int level, MMDataset *base) {
    virt = v;
    region = mmgeo_virtual_region(v, level);
    mmgeo_region_info_t info;
    mmgeo_region_info(region, &info);
    nRasterXSize = info.width;
    nRasterYSize = info.height;
    GDALDatasetH src = mmgeo_virtual_source(v);
    double sgt[6];
    if (GDALGetGeoTransform(src, sgt) == CE_None) {
        has_gt = true;
        memcpy(gt, sgt, sizeof gt);
        if (level > 0) { // the reduced raster covers the same extent
            const double fx = static_cast<double>(GDALGetRasterXSize(src)) / nRasterXSize;
            const double fy = static_cast<double>(GDALGetRasterYSize(src)) / nRasterYSize;
            gt[1] *= fx, gt[2] *= fy, gt[4] *= fx, gt[5] *= fy;
        }
        if (auto *s = GDALGetSpatialRef(src)) srs = *OGRSpatialReference::FromHandle(s);
    } else if (level == 0 && GDALGetGCPCount(src) > 0) {
        const int n = GDALGetGCPCount(src);
        GDAL_GCP *g = GDALDuplicateGCPs(n, GDALGetGCPs(src));
        gcps.assign(g, g + n);
        CPLFree(g);
        if (auto *s = GDALGetGCPSpatialRef(src)) gcp_srs = *OGRSpatialReference::FromHandle(s);
    }
    for (int b = 1; b <= info.bands; b++)
        SetBand(b, new MMRasterBand(this, b, info.type));
    spread_bands = info.spread_bands;
    // SAMPLES=K: the last band is the spread, described as mm_translate --spread band describes it
    for (int b = info.bands - info.spread_bands + 1; b <= info.bands && info.spread_bands; b++) {
        const int of = info.bands - info.spread_bands;
        GetRasterBand(b)->SetDescription(
            CPLSPrintf("spread: root mean square over bands 1-%d of the standard deviation over "
                       "the samples",
                       of));
        GetRasterBand(b)->SetMetadataItem("MM_SPREAD", "STDDEV");
        GetRasterBand(b)->SetMetadataItem("MM_SPREAD_OF", CPLSPrintf("1-%d", of));
    }
    if (info.has_mask) mask_band = new MMMaskBand(this);
    if (info.bands > 1) SetMetadataItem("INTERLEAVE", "PIXEL", "IMAGE_STRUCTURE");
    if (level == 0) {
        SetMetadata(mmgeo_virtual_metadata(v));
        owner = true;
    }
    (void)base;
    return true;
}

// Renders block (bx, by) of all bands (or takes the last rendered one) and copies one band.
CPLErr MMDataset::Render(int bx, int by, int band, void *image) {
    const int x = bx * BLOCK, y = by * BLOCK;
    const int w = std::min(BLOCK, nRasterXSize - x), h = std::min(BLOCK, nRasterYSize - y);
    const size_t plane = static_cast<size_t>(w) * h;
    std::lock_guard<std::mutex> lock(mtx);
    if (bx != last_bx || by != last_by) {
        last.resize(plane * nBands);
        last_mask.resize(plane);
        last_bx = last_by = -1;
        char err[2048];
        if (mmgeo_region_render(region, x, y, w, h, last.data(), last_mask.data(), err,
                                sizeof err)) {
            CPLError(CE_Failure, CPLE_AppDefined, "MM: %s", err);
            return CE_Failure;
        }
        last_bx = bx, last_by = by;
    }
    if (band == 0) { // the mask
        memset(image, 0, static_cast<size_t>(BLOCK) * BLOCK);
        for (int r = 0; r < h; r++)
            memcpy(static_cast<GByte *>(image) + static_cast<size_t>(r) * BLOCK,
                   last_mask.data() + static_cast<size_t>(r) * w, w);
        return CE_None;
    }
    GDALRasterBand *b = GetRasterBand(band);
    const GDALDataType t = b->GetRasterDataType();
    const int ts = GDALGetDataTypeSizeBytes(t);
    if (w < BLOCK || h < BLOCK) memset(image, 0, static_cast<size_t>(BLOCK) * BLOCK * ts);
    for (int r = 0; r < h; r++)
        GDALCopyWords(last.data() + (band - 1) * plane + static_cast<size_t>(r) * w, GDT_Float64, 8,
                      static_cast<GByte *>(image) + static_cast<size_t>(r) * BLOCK * ts, t, ts, w);
    return CE_None;
}

MMRasterBand::MMRasterBand(MMDataset *ds, int band, GDALDataType type) {
    poDS = ds;
    nBand = band;
    eDataType = type;
    nBlockXSize = BLOCK;
    nBlockYSize = BLOCK;
}

CPLErr MMRasterBand::IReadBlock(int bx, int by, void *image) {
    return static_cast<MMDataset *>(poDS)->Render(bx, by, nBand, image);
}

double MMRasterBand::GetNoDataValue(int *success) {
    mmgeo_region_info_t info;
    mmgeo_region_info(static_cast<MMDataset *>(poDS)->region, &info);
    if (success) *success = info.has_nodata;
    return info.has_nodata ? info.nodata : 0;
}

GDALColorInterp MMRasterBand::GetColorInterpretation() {
    auto *ds = static_cast<MMDataset *>(poDS);
    if (ds->GetRasterCount() - ds->spread_bands == 3 && nBand <= 3 && eDataType == GDT_Byte &&
        (EQUAL(ds->target.c_str(), "rgb") || EQUAL(ds->target.c_str(), "osm")))
        return static_cast<GDALColorInterp>(GCI_RedBand + nBand - 1);
    return GCI_GrayIndex;
}

// SAR written as sigma0 dB says so, as mm_translate's output does
const char *MMRasterBand::GetUnitType() {
    auto *ds = static_cast<MMDataset *>(poDS);
    const char *u = CSLFetchNameValue(mmgeo_virtual_metadata(ds->virt), "SAR_UNITS");
    return u && EQUAL(u, "db") ? "dB" : "";
}

int MMRasterBand::GetMaskFlags() {
    return static_cast<MMDataset *>(poDS)->mask_band ? GMF_PER_DATASET
                                                     : GDALRasterBand::GetMaskFlags();
}

GDALRasterBand *MMRasterBand::GetMaskBand() {
    auto *m = static_cast<MMDataset *>(poDS)->mask_band;
    return m ? m : GDALRasterBand::GetMaskBand();
}

MMMaskBand::MMMaskBand(MMDataset *ds) {
    poDS = ds;
    nBand = 0;
    nRasterXSize = ds->GetRasterXSize();
    nRasterYSize = ds->GetRasterYSize();
    eDataType = GDT_Byte;
    nBlockXSize = BLOCK;
    nBlockYSize = BLOCK;
}

CPLErr MMMaskBand::IReadBlock(int bx, int by, void *image) {
    return static_cast<MMDataset *>(poDS)->Render(bx, by, 0, image);
}

int MMRasterBand::GetOverviewCount() {
    return static_cast<int>(static_cast<MMDataset *>(poDS)->overviews.size());
}

GDALRasterBand *MMRasterBand::GetOverview(int i) {
    auto &ov = static_cast<MMDataset *>(poDS)->overviews;
    if (i < 0 || i >= static_cast<int>(ov.size())) return nullptr;
    return ov[i]->GetRasterBand(nBand);
}

int MMDataset::Identify(GDALOpenInfo *info) {
    if (STARTS_WITH_CI(info->pszFilename, "MM:")) return TRUE;
    return info->nHeaderBytes > 0 &&
           strstr(reinterpret_cast<const char *>(info->pabyHeader), "<MMDataset") != nullptr;
}

// A path of the .mmvrt file, relative to its directory unless absolute (or a /vsi path).
std::string relative_to(const std::string &dir, const char *path) {
    if (dir.empty() || !CPLIsFilenameRelative(path)) return path;
    return CPLFormFilename(dir.c_str(), path, nullptr);
}

GDALDataset *MMDataset::Open(GDALOpenInfo *info) {
    if (!Identify(info)) return nullptr;
    if (info->eAccess == GA_Update) {
        CPLError(CE_Failure, CPLE_NotSupported, "MM: the driver is read-only");
        return nullptr;
    }
    // settings: the .mmvrt file's, then the open options
    CPLStringList opt;
    std::vector<std::string> paths, mods;
    std::string target;
    if (STARTS_WITH_CI(info->pszFilename, "MM:")) {
        const char *rest = info->pszFilename + 3;
        const char *colon = strchr(rest, ':');
        if (!colon || colon == rest || !colon[1]) {
            CPLError(CE_Failure, CPLE_OpenFailed,
                     "MM: '%s' is not a connection string MM:<target modality>:<source>",
                     info->pszFilename);
            return nullptr;
        }
        target.assign(rest, colon - rest);
        paths.emplace_back(colon + 1);
        mods.emplace_back("");
    } else {
        CPLXMLNode *root = CPLParseXMLFile(info->pszFilename);
        CPLXMLNode *ds = root ? CPLGetXMLNode(root, "=MMDataset") : nullptr;
        if (!ds) {
            CPLError(CE_Failure, CPLE_OpenFailed, "MM: '%s' %s", info->pszFilename,
                     root ? "has no <MMDataset> element" : "is not well-formed XML");
            CPLDestroyXMLNode(root);
            return nullptr;
        }
        const std::string dir = CPLGetPath(info->pszFilename);
        target = CPLGetXMLValue(ds, "Target", CPLGetXMLValue(ds, "target", ""));
        for (CPLXMLNode *n = ds->psChild; n; n = n->psNext) {
            if (n->eType != CXT_Element) continue;
            const char *val = CPLGetXMLValue(n, nullptr, "");
            if (EQUAL(n->pszValue, "Source")) {
                paths.push_back(relative_to(dir, val));
                mods.emplace_back(CPLGetXMLValue(n, "modality", ""));
            } else if (EQUAL(n->pszValue, "Target")) {
                continue;
            } else if (EQUAL(n->pszValue, "Model") || EQUAL(n->pszValue, "Cache")) {
                const bool none = EQUAL(n->pszValue, "Cache") && EQUAL(val, "NONE");
                opt.SetNameValue(CPLString(n->pszValue).toupper(),
                                 none ? val : relative_to(dir, val).c_str());
            } else {
                opt.SetNameValue(CPLString(n->pszValue).toupper(), val);
            }
        }
        CPLDestroyXMLNode(root);
        if (target.empty() || paths.empty()) {
            CPLError(CE_Failure, CPLE_OpenFailed,
                     "MM: '%s' needs a target modality (<MMDataset target=\"...\">) and at least "
                     "one <Source>",
                     info->pszFilename);
            return nullptr;
        }
    }
    for (char **o = info->papszOpenOptions; o && *o; o++) {
        char *key = nullptr;
        const char *val = CPLParseNameValue(*o, &key);
        if (key && val) opt.SetNameValue(key, val);
        CPLFree(key);
    }
    if (paths.size() > MMGEO_MAX_IO) {
        CPLError(CE_Failure, CPLE_OpenFailed, "MM: at most %d sources", MMGEO_MAX_IO);
        return nullptr;
    }
    if (const char *m = opt.FetchNameValue("SOURCE_MODALITY")) {
        if (paths.size() != 1) {
            CPLError(CE_Failure, CPLE_IllegalArg,
                     "MM: SOURCE_MODALITY is for a single source (name the modalities of several "
                     "in the .mmvrt file)");
            return nullptr;
        }
        mods[0] = m;
    }

    // the settings: every one through libmmgeo's parser (mmgeo_settings.h), the same rules and
    // messages as mm_translate's options; SOURCE_MODALITY and CACHE are the driver's own
    mmgeo_settings st;
    mmgeo_settings_init(&st, 1);
    for (int i = 0; i < opt.size(); i++) {
        char *key = nullptr;
        const char *val = CPLParseNameValue(opt[i], &key);
        const bool known = key && mmgeo_settings_known(key);
        const bool bad = known && mmgeo_settings_set(&st, key, val);
        CPLFree(key);
        if (bad) {
            CPLError(CE_Failure, CPLE_IllegalArg, "MM: %s", mmgeo_settings_errmsg(&st));
            return nullptr;
        }
    }
    if (mmgeo_settings_finish(&st)) {
        CPLError(CE_Failure, CPLE_IllegalArg, "MM: %s", mmgeo_settings_errmsg(&st));
        return nullptr;
    }
    mmgeo_virtual_params p;
    mmgeo_virtual_params_init(&p);
    p.target = target.c_str();
    p.n_sources = static_cast<int>(paths.size());
    for (size_t i = 0; i < paths.size(); i++) {
        p.source_paths[i] = paths[i].c_str();
        p.source_mods[i] = mods[i].c_str();
    }
    p.settings = &st;
    p.default_model = DefaultModel();
    const char *cache = opt.FetchNameValue("CACHE");
    if (!cache) cache = CPLGetConfigOption("MM_CACHE", nullptr);
    if (cache && !EQUAL(cache, "NONE")) p.cache_path = cache;

    mmgeo_virtual *v = nullptr;
    char err[2048];
    if (mmgeo_virtual_open(&p, &v, err, sizeof err)) {
        CPLError(CE_Failure, CPLE_OpenFailed, "MM: %s", err);
        return nullptr;
    }
    for (char **w = mmgeo_virtual_warnings(v); w && *w; w++)
        CPLError(CE_Warning, CPLE_AppDefined, "MM: %s", *w);
    auto *ds = new MMDataset();
    ds->target = target;
    ds->Init(v, 0, nullptr);
    for (int l = 1; l < mmgeo_virtual_levels(v); l++) {
        auto *o = new MMDataset();
        o->target = target;
        o->Init(v, l, ds);
        ds->overviews.push_back(o);
    }
    if (*mmgeo_virtual_overview_note(v)) CPLDebug("MM", "%s", mmgeo_virtual_overview_note(v));
    ds->SetDescription(info->pszFilename);
    return ds;
}

} // namespace

extern "C" CPL_DLL void GDALRegister_MM();

void GDALRegister_MM() {
    if (!GDAL_CHECK_VERSION("MM")) return;
    if (GDALGetDriverByName("MM")) return;
    auto *drv = new GDALDriver();
    drv->SetDescription("MM");
    drv->SetMetadataItem(GDAL_DCAP_RASTER, "YES");
    drv->SetMetadataItem(GDAL_DMD_LONGNAME, "MetaEarth-MM synthesised modality (virtual)");
    drv->SetMetadataItem(GDAL_DMD_HELPTOPIC, "man gdal_mm (7)");
    drv->SetMetadataItem(GDAL_DMD_EXTENSION, "mmvrt");
    drv->SetMetadataItem(GDAL_DMD_CONNECTION_PREFIX, "MM:");
    drv->SetMetadataItem(GDAL_DCAP_VIRTUALIO, "YES");
    drv->SetMetadataItem(
        GDAL_DMD_OPENOPTIONLIST,
        "<OpenOptionList>"
        "<Option name='SOURCE_MODALITY' type='string' description='modality of the source "
        "(default: its MM_MODALITY item or a word of its file name)'/>"
        "<Option name='MODEL' type='string' description='model file (default: $MM_MODEL or the "
        "built-in default model)'/>"
        "<Option name='DEVICE' type='string-select' default='cpu'><Value>cpu</Value>"
        "<Value>cuda</Value></Option>"
        "<Option name='PRECISION' type='string-select'><Value>bf16</Value><Value>fp32</Value>"
        "</Option>"
        "<Option name='THREADS' type='int' description='model threads (0: all cores)'/>"
        "<Option name='STEPS' type='int' description='sampling steps (model default)'/>"
        "<Option name='GUIDANCE' type='float' description='guidance scale (model default)'/>"
        "<Option name='SAMPLER' type='string-select'><Value>euler</Value><Value>heun</Value>"
        "<Value>euler_maruyama</Value></Option>"
        "<Option name='SEED' type='int' description='seed (model default)'/>"
        "<Option name='OVERLAP' type='int' description='window overlap in pixels (a quarter of "
        "the window)'/>"
        "<Option name='BATCH' type='int' default='4' description='windows per model call'/>"
        "<Option name='CACHE' type='string' description='SQLite window cache file, or NONE "
        "(default: the MM_CACHE configuration option, else NONE)'/>"
        "<Option name='CACHE_MB' type='float' default='256' description='in-memory window "
        "cache'/>"
        "<Option name='BANDS' type='string' description='bands of the source, e.g. 1,2,3 (as "
        "mm_translate -b)'/>"
        "<Option name='PROFILE' type='string' description='MODALITY=SPEC[,MODALITY=SPEC...] "
        "I/O profiles (as mm_translate --profile)'/>"
        "<Option name='OT' type='string' description='output data type (as mm_translate "
        "-ot)'/>"
        "<Option name='SAR_UNITS' type='string-select' description='units of a SAR source: "
        "sigma0 in dB, linear power, or GRD amplitude digital numbers (default: the band unit "
        "type or SAR_UNITS item, else detected; as mm_translate --sar-units)'>"
        "<Value>db</Value><Value>linear</Value><Value>amplitude</Value></Option>"
        "<Option name='SAR_BAND' type='int' description='band of a multi-band SAR source "
        "(default: the one labelled VH; as mm_translate --sar-band)'/>"
        "<Option name='NONFINITE' type='string-select' description='NaN or Inf from the network: "
        "a read error naming the window (ERROR, default) or nodata pixels (NODATA; as "
        "mm_translate --nonfinite)'><Value>ERROR</Value><Value>NODATA</Value></Option>"
        "<Option name='SAMPLES' type='int' default='1' description='K samples of every window "
        "with distinct seeds: their mean, and their spread (standard deviation) as one more "
        "band (as mm_translate --samples K --spread band)'/>"
        "<Option name='SPREAD' type='string-select' description='where the spread of SAMPLES "
        "goes: one more band (a dataset has no sidecar)'><Value>BAND</Value></Option>"
        "<Option name='PROCESSOR' type='string-select' description='test hook: a test "
        "processor instead of the model'><Value>model</Value><Value>identity</Value>"
        "<Value>negate</Value></Option>"
        "<Option name='WINDOW' type='int' description='test hook: the test processors window'/>"
        "</OpenOptionList>");
    drv->pfnIdentify = MMDataset::Identify;
    drv->pfnOpen = MMDataset::Open;
    GetGDALDriverManager()->RegisterDriver(drv);
}
