/* STAC 1.0.0 for the tools' outputs (docs/batch.md, "STAC items"): an Item beside each output
 * (OUTPUT.stac.json) and, for a batch, a Catalog linking them, so that catalogue tools (STAC
 * browsers, pystac, QGIS's STAC plugin) index the results. Written with cJSON under a temporary
 * name (part_file.h) and renamed when complete. */
#ifndef MM_TOOLS_TOOL_STAC_H
#define MM_TOOLS_TOOL_STAC_H
#include "mmgeo.h"

/* The item's file name of an output: DST.stac.json (malloc'd; NULL when out of memory). */
char *mm_tool_stac_path(const char *dst);
/* Writes the STAC Item of the output dst, all read back from the written file (its sources,
 * modality and spread sidecar from its MM_SOURCE, MM_MODALITY and MM_SPREAD items): geometry (the footprint, edges densified) and bbox in WGS 84 (longitude,
 * latitude), the projection extension (proj:epsg or null, proj:wkt2, proj:shape,
 * proj:transform), the source's acquisition datetime (its metadata, or the STAC item beside it;
 * else the processing time, said in metaearth:datetime_source), the output (and spread) as
 * assets, each source as a derived_from link, and the model, task and settings as properties
 * with metaearth:synthetic true. Returns 0, or -1 after a message on stderr (the raster stays
 * written). */
int mm_tool_stac_item(const char *tool, const char *dst);
/* The same with the source's STAC Item given (an input taken from a STAC manifest): source (the
 * Item, for the datetime) linked as rel derived_from with source_href, in place of the item looked
 * for beside the source. */
struct cJSON;
int mm_tool_stac_item_source(const char *tool, const char *dst, const char *source_href,
                             const struct cJSON *source);
/* Writes a STAC Catalog at path (id, description) linking the items (n paths; relative hrefs
 * for those under the catalog's folder). Returns 0, or -1 after a message on stderr. */
int mm_tool_stac_catalog(const char *tool, const char *path, const char *id,
                         const char *description, const char *const *items, int n);

#endif
