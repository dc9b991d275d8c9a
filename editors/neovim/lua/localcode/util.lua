-- Small shims over the Neovim LSP API so one plugin runs on 0.7 through 0.12.
local M = {}

local has_011 = vim.fn.has("nvim-0.11") == 1

function M.clients(filter)
  filter = vim.tbl_extend("force", { name = "localcode" }, filter or {})
  if vim.lsp.get_clients then
    return vim.lsp.get_clients(filter)
  end
  local out = {}
  for _, client in pairs(vim.lsp.get_active_clients()) do
    if client.name == filter.name and (not filter.bufnr or vim.lsp.buf_is_attached(filter.bufnr, client.id)) then
      table.insert(out, client)
    end
  end
  return out
end

function M.get_client(bufnr)
  return M.clients({ bufnr = bufnr })[1]
end

function M.is_stopped(client)
  if has_011 then
    return client:is_stopped()
  end
  return client.is_stopped()
end

function M.encoding(client)
  return client.offset_encoding or "utf-16"
end

function M.position_params(bufnr, client)
  local win = vim.fn.bufwinid(bufnr)
  if win == -1 then
    win = 0
  end
  if has_011 then
    return vim.lsp.util.make_position_params(win, M.encoding(client))
  end
  return vim.lsp.util.make_position_params(win)
end

--- client:request on 0.11+, client.request before. Returns ok, request_id.
function M.request(client, method, params, handler, bufnr)
  if has_011 then
    return client:request(method, params, handler, bufnr)
  end
  return client.request(method, params, handler, bufnr)
end

function M.cancel(client, id)
  if has_011 then
    return client:cancel_request(id)
  end
  return client.cancel_request(id)
end

--- workspace/executeCommand through the client. Returns the request id (for a cancel), or nil
--- when the server does not offer the command (the handler then gets an error).
function M.execute_command(client, command, bufnr, handler)
  local wrapped = function(err, result)
    handler(err, result)
  end
  local provider = (client.server_capabilities or {}).executeCommandProvider
  local advertised = type(provider) == "table" and provider.commands or {}
  if not vim.tbl_contains(advertised, command.command) then
    handler({ code = -32601, message = "the server does not offer " .. command.command }, nil)
    return nil
  end
  local ok, id = M.request(client, "workspace/executeCommand",
    { command = command.command, arguments = command.arguments }, wrapped, bufnr)
  return ok and id or nil
end

return M
