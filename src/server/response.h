/* response.h — what a job's reply becomes for the client, in OpenAI's
 * shapes: a chat.completion / text_completion object, or SSE chunks
 * (chat.completion.chunk / text_completion) ending in "data: [DONE]".
 * Thinking goes to reasoning_content; tool calls (when the request offered
 * tools) are parsed out of the answer into tool_calls, streamed as they
 * form; finish_reason is stop, length or tool_calls. The hooks run on the
 * engine's thread and write through srv_job_write. */
#ifndef Q35_SERVER_RESPONSE_H
#define Q35_SERVER_RESPONSE_H

#include "server/engine.h"
#include "server/request.h"

typedef struct srv_resp srv_resp;

/* A formatter for `req` (borrowed: it must outlive the job's end; the
 * tools JSON is copied) answering as model `model`. Installs itself as
 * j->ud / on_piece / on_end / free_ud (the job frees it). NULL when out of
 * memory. */
srv_resp *srv_resp_attach(srv_job *j, const srv_request *req, const char *model);

/* Asks the formatter to work out, when the reply ends complete, the ids
 * of the conversation as the client will send it back next turn (its
 * messages, then this answer as an assistant message, no generation
 * prompt), into j->next_prefix, so that the engine can compute it in idle
 * time. `body` (the request, copied) and `tok` (borrowed: it outlives the
 * job) as in the request. Returns 0, or -1 when out of memory. */
int srv_resp_predict_next(srv_resp *r, const q35_tokenizer *tok, const char *body, size_t len,
                          bool thinking);

/* {"error": {...}} for e; caller frees with free(). */
char *srv_error_json(const srv_error *e);

#endif
