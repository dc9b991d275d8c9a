-- Inline completion (ghost text).
-- Neovim 0.12+: vim.lsp.inline_completion does it natively; we only enable it.
-- Neovim 0.11 and older: we request textDocument/inlineCompletion ourselves (debounced, the stale
-- request cancelled), draw the first item as ghost text with extmarks and insert it on accept.
local config = require("localcode.config")
local util = require("localcode.util")

local M = {}
local uv = vim.uv or vim.loop
local ns = vim.api.nvim_create_namespace("localcode_inline")
M.namespace = ns

---@type table<integer, {client: table, timer: userdata?, request_id: integer?, item: table?, row: integer?, col: integer?, tick: integer?}>
local buffers = {}

local function native()
  return vim.lsp.inline_completion ~= nil and vim.lsp.inline_completion.enable ~= nil
end

--- Byte column of an LSP `character` in `line` for the client's position encoding.
local function byte_col(line, character, encoding)
  if encoding == "utf-8" then
    return math.min(character, #line)
  end
  local ok, col
  if vim.fn.has("nvim-0.11") == 1 then
    ok, col = pcall(vim.str_byteindex, line, encoding, character, false)
  else
    ok, col = pcall(vim.str_byteindex, line, character, encoding == "utf-16")
  end
  return ok and col or #line
end

local function insert_text(item)
  local text = item.insertText
  if type(text) == "table" then
    return text.value or "", text.kind == "snippet"
  end
  return text or "", false
end

--- The ghost text to show for `item` at the cursor: what the item adds after the typed prefix.
function M.ghost_text(item, line, cursor_col, encoding)
  local text = insert_text(item)
  if item.range then
    local start_col = byte_col(line, item.range.start.character, encoding)
    if start_col > cursor_col then
      return nil
    end
    local typed = line:sub(start_col + 1, cursor_col)
    if text:sub(1, #typed) ~= typed then
      return nil -- the suggestion does not continue what is typed
    end
    text = text:sub(#typed + 1)
  end
  if text == "" then
    return nil
  end
  return text
end

function M.clear(bufnr)
  local st = buffers[bufnr]
  if st then
    st.item = nil
  end
  if vim.api.nvim_buf_is_valid(bufnr) then
    vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  end
end

function M.visible(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if native() then
    return false
  end
  local st = buffers[bufnr]
  return st ~= nil and st.item ~= nil
end

local function draw(bufnr, st, item)
  local row, col = st.row, st.col
  local line = vim.api.nvim_buf_get_lines(bufnr, row, row + 1, false)[1] or ""
  local ghost = M.ghost_text(item, line, col, util.encoding(st.client))
  if not ghost then
    return false
  end
  local hl = config.options.inline.hl_group or "Comment"
  local lines = vim.split(ghost, "\n", { plain = true })
  local opts = {
    virt_text = { { lines[1], hl } },
    virt_text_pos = vim.fn.has("nvim-0.10") == 1 and "inline" or "overlay",
    hl_mode = "combine",
  }
  if #lines > 1 then
    opts.virt_lines = {}
    for i = 2, #lines do
      table.insert(opts.virt_lines, { { lines[i], hl } })
    end
  end
  vim.api.nvim_buf_clear_namespace(bufnr, ns, 0, -1)
  vim.api.nvim_buf_set_extmark(bufnr, ns, row, col, opts)
  st.item = item
  return true
end

--- Ask the server for inline completions at the cursor now (cancels a pending request).
--- `on_result(items)` is called with the items the server returned (tests use it).
function M.request(bufnr, trigger_kind, on_result)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local st = buffers[bufnr]
  if not st or util.is_stopped(st.client) then
    return
  end
  local client = st.client
  if st.request_id then
    util.cancel(client, st.request_id)
    st.request_id = nil
  end
  local params = util.position_params(bufnr, client)
  params.context = { triggerKind = trigger_kind or 2 } -- 1 = Invoked, 2 = Automatic
  local cursor = vim.api.nvim_win_get_cursor(0)
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  local request_id
  local _, id = util.request(client, "textDocument/inlineCompletion", params, function(err, result)
    if st.request_id == request_id then
      st.request_id = nil
    end
    local items = {}
    if not err and type(result) == "table" then
      items = result.items or result
    end
    local now = vim.api.nvim_win_get_cursor(0)
    local stale = vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
      or now[1] ~= cursor[1] or now[2] ~= cursor[2]
    if not stale and items[1] then
      st.row, st.col = cursor[1] - 1, cursor[2]
      for _, item in ipairs(items) do
        if draw(bufnr, st, item) then
          break
        end
      end
    end
    if on_result then
      on_result(items, err, stale)
    end
  end, bufnr)
  request_id = id
  st.request_id = id
  return id
end

local function schedule(bufnr)
  local st = buffers[bufnr]
  if not st then
    return
  end
  M.clear(bufnr)
  if not st.timer then
    st.timer = uv.new_timer()
  end
  st.timer:stop()
  st.timer:start(config.options.inline.debounce_ms or 150, 0, vim.schedule_wrap(function()
    if vim.api.nvim_buf_is_valid(bufnr) and vim.api.nvim_get_current_buf() == bufnr then
      M.request(bufnr, 2)
    end
  end))
end

--- Insert the visible suggestion. Returns true when something was inserted.
function M.accept(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if native() then
    return vim.lsp.inline_completion.get and vim.lsp.inline_completion.get({ bufnr = bufnr }) or false
  end
  local st = buffers[bufnr]
  local item = st and st.item
  if not item then
    local key = config.options.inline.accept_key
    if key then -- nothing to accept: behave like the key would
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(key, true, false, true), "n", false)
    end
    return false
  end
  local encoding = util.encoding(st.client)
  local text, is_snippet = insert_text(item)
  local line = vim.api.nvim_buf_get_lines(bufnr, st.row, st.row + 1, false)[1] or ""
  local cursor_char = vim.lsp.util.character_offset(bufnr, st.row, st.col, encoding)
  local range = item.range or {
    start = { line = st.row, character = cursor_char },
    ["end"] = { line = st.row, character = cursor_char },
  }
  M.clear(bufnr)
  if is_snippet and vim.snippet then
    vim.lsp.util.apply_text_edits({ { range = range, newText = "" } }, bufnr, encoding)
    local start_col = byte_col(line, range.start.character, encoding)
    vim.api.nvim_win_set_cursor(0, { range.start.line + 1, start_col })
    vim.snippet.expand(text)
  else
    vim.lsp.util.apply_text_edits({ { range = range, newText = text } }, bufnr, encoding)
    local start_col = byte_col(line, range.start.character, encoding)
    local lines = vim.split(text, "\n", { plain = true })
    local end_row = range.start.line + #lines - 1
    local end_col = #lines == 1 and (start_col + #lines[1]) or #lines[#lines]
    vim.api.nvim_win_set_cursor(0, { end_row + 1, end_col })
  end
  if item.command then
    util.execute_command(st.client, item.command, bufnr, function() end)
  end
  return true
end

function M.dismiss(bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  if native() then
    return
  end
  M.clear(bufnr)
end

function M.detach(bufnr)
  local st = buffers[bufnr]
  if st and st.timer then
    st.timer:stop()
    st.timer:close()
  end
  M.clear(bufnr)
  buffers[bufnr] = nil
end

--- Turn ghost text on for a buffer attached to the localcode client.
function M.attach(client, bufnr)
  local caps = client.server_capabilities or {}
  if native() then
    vim.lsp.inline_completion.enable(true, { bufnr = bufnr })
  elseif caps.inlineCompletionProvider and not buffers[bufnr] then
    buffers[bufnr] = { client = client }
    local group = vim.api.nvim_create_augroup("localcode_inline_" .. bufnr, { clear = true })
    vim.api.nvim_create_autocmd("TextChangedI", {
      group = group, buffer = bufnr, callback = function() schedule(bufnr) end,
    })
    vim.api.nvim_create_autocmd("CursorMovedI", {
      group = group, buffer = bufnr,
      callback = function()
        local st = buffers[bufnr]
        local cur = vim.api.nvim_win_get_cursor(0)
        if st and st.item and (cur[1] - 1 ~= st.row or cur[2] ~= st.col) then
          M.clear(bufnr)
        end
      end,
    })
    vim.api.nvim_create_autocmd({ "InsertLeave", "BufLeave" }, {
      group = group, buffer = bufnr,
      callback = function()
        local st = buffers[bufnr]
        if st and st.request_id then
          util.cancel(st.client, st.request_id)
          st.request_id = nil
        end
        M.clear(bufnr)
      end,
    })
    vim.api.nvim_create_autocmd("LspDetach", {
      group = group, buffer = bufnr,
      callback = function(ev)
        if ev.data and ev.data.client_id == client.id then
          M.detach(bufnr)
          pcall(vim.api.nvim_del_augroup_by_id, group)
        end
      end,
    })
  end
  local inline = config.options.inline
  if inline.accept_key then
    vim.keymap.set("i", inline.accept_key, "<Plug>(localcode-accept)",
      { buffer = bufnr, desc = "localcode: accept suggestion" })
  end
  if inline.dismiss_key then
    vim.keymap.set("i", inline.dismiss_key, "<Plug>(localcode-dismiss)",
      { buffer = bufnr, desc = "localcode: dismiss suggestion" })
  end
end

M._buffers = buffers
return M
