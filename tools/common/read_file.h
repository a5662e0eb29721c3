/* Small text files read whole (configs, JSON), for the tools. */
#ifndef MM_TOOLS_READ_FILE_H
#define MM_TOOLS_READ_FILE_H

/* The contents of path, NUL-terminated (an empty file gives ""), to free(); NULL with errno set
 * when it cannot be opened or read, when memory runs out, or when it is larger than about
 * 32 MiB (EFBIG): no config or JSON document of the project comes near that. */
char *mm_read_text_file(const char *path);

#endif
