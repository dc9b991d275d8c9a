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

-- Per buffer: the client, the debounce timer, the pending request of each kind (ghost text and
-- the completion menu never cancel each other), and the suggestions shown: `items`, the one
-- drawn (`index`), and where (`row`, `col`).
---@type table<integer, {client: table, timer: userdata?, pending: table<string, integer>, items: table[]?, index: integer?, item: table?, row: integer?, col: integer?}>
local buffers = {}

--- Ghost text on or off for this session (`<Plug>(localcode-toggle)`); starts as the option.
M.enabled = nil

local function enabled()
  if M.enabled == nil then
    return config.options.inline.enabled ~= false
  end
  return M.enabled
end

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
    st.items = nil
    st.index = nil
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

--- Cancel this buffer's pending request of one kind ("inline", "completion"), or of every kind.
function M.cancel(bufnr, kind)
  local st = buffers[bufnr or vim.api.nvim_get_current_buf()]
  if not st then
    return 0
  end
  local count = 0
  for name, id in pairs(st.pending) do
    if kind == nil or kind == name then
      util.cancel(st.client, id)
      st.pending[name] = nil
      count = count + 1
    end
  end
  return count
end

--- Send a request in this buffer's slot for `kind`: a newer request of the same kind cancels
--- the older one; other kinds are left alone.
function M.slot_request(bufnr, kind, method, params, handler)
  local st = buffers[bufnr]
  M.cancel(bufnr, kind)
  local request_id
  local _, id = util.request(st.client, method, params, function(err, result, ctx)
    if st.pending[kind] == request_id then
      st.pending[kind] = nil
    end
    handler(err, result, ctx)
  end, bufnr)
  request_id = id
  st.pending[kind] = id
  return id
end

--- The completion menu through the same slots (`kind` "completion"): asking for it never
--- cancels the ghost text's request. `on_result(err, result)`.
function M.request_completion(bufnr, on_result)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local st = buffers[bufnr]
  if not st or util.is_stopped(st.client) then
    return
  end
  local params = util.position_params(bufnr, st.client)
  return M.slot_request(bufnr, "completion", "textDocument/completion", params, on_result)
end

--- Ask the server for inline completions at the cursor now (cancels a pending one).
--- `on_result(items)` is called with the items the server returned (tests use it).
function M.request(bufnr, trigger_kind, on_result)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local st = buffers[bufnr]
  if not st or util.is_stopped(st.client) then
    return
  end
  local client = st.client
  local params = util.position_params(bufnr, client)
  params.context = { triggerKind = trigger_kind or 2 } -- 1 = Invoked, 2 = Automatic
  local cursor = vim.api.nvim_win_get_cursor(0)
  local tick = vim.api.nvim_buf_get_changedtick(bufnr)
  return M.slot_request(bufnr, "inline", "textDocument/inlineCompletion", params, function(err, result)
    local items = {}
    if not err and type(result) == "table" then
      items = result.items or result
    end
    local now = vim.api.nvim_win_get_cursor(0)
    local stale = vim.api.nvim_buf_get_changedtick(bufnr) ~= tick
      or now[1] ~= cursor[1] or now[2] ~= cursor[2]
    if not stale and items[1] then
      st.row, st.col = cursor[1] - 1, cursor[2]
      for index, item in ipairs(items) do
        if draw(bufnr, st, item) then
          st.items, st.index = items, index
          break
        end
      end
    end
    if on_result then
      on_result(items, err, stale)
    end
  end)
end

--- Show the next (step 1) or previous (step -1) suggestion of the last answer.
function M.cycle(bufnr, step)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local st = buffers[bufnr]
  if not st or not st.items or #st.items < 2 then
    return false
  end
  local count = #st.items
  for offset = 1, count - 1 do
    local index = (st.index - 1 + offset * step) % count + 1
    local items = st.items
    if draw(bufnr, st, items[index]) then
      st.items, st.index = items, index
      return true
    end
  end
  return false
end

--- Ask for a suggestion now (`<Plug>(localcode-trigger)`), even with ghost text turned off.
function M.trigger(bufnr)
  return M.request(bufnr or vim.api.nvim_get_current_buf(), 1)
end

--- Turn ghost text on or off for this session; returns the new state.
function M.toggle()
  M.enabled = not enabled()
  if not M.enabled then
    for bufnr in pairs(buffers) do
      M.cancel(bufnr, "inline")
      M.clear(bufnr)
    end
  end
  vim.notify("localcode: ghost text " .. (M.enabled and "on" or "off"), vim.log.levels.INFO,
    { title = "localcode" })
  return M.enabled
end

local function schedule(bufnr)
  local st = buffers[bufnr]
  if not st then
    return
  end
  M.clear(bufnr)
  if not enabled() then
    return
  end
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

--- Insert only the start of the visible suggestion: its next word (`what` = "word") or the rest
--- of its first line ("line"); the remainder stays as ghost text. Returns true when inserted.
function M.accept_part(what, bufnr)
  bufnr = bufnr or vim.api.nvim_get_current_buf()
  local st = buffers[bufnr]
  local item = st and st.item
  if not item then
    return false
  end
  local line = vim.api.nvim_buf_get_lines(bufnr, st.row, st.row + 1, false)[1] or ""
  local ghost = M.ghost_text(item, line, st.col, util.encoding(st.client))
  if not ghost then
    return false
  end
  local part
  if what == "word" then
    part = ghost:match("^%s*[%w_]+") or ghost:match("^%s*[^%w_%s]+") or ghost:match("^%s+")
  else
    part = ghost:match("^[^\n]+") or ghost:match("^\n[^\n]*")
  end
  if not part or part == "" then
    return false
  end
  if part == ghost then
    return M.accept(bufnr)
  end
  local lines = vim.split(part, "\n", { plain = true })
  vim.api.nvim_buf_set_text(bufnr, st.row, st.col, st.row, st.col, lines)
  local row = st.row + #lines - 1
  local col = #lines == 1 and (st.col + #part) or #lines[#lines]
  vim.api.nvim_win_set_cursor(0, { row + 1, col })
  -- the rest as a suggestion at the new cursor (no range: it continues right there)
  local rest = { insertText = ghost:sub(#part + 1), command = item.command }
  local items, index = st.items, st.index
  st.row, st.col = row, col
  if draw(bufnr, st, rest) then
    st.items, st.index = items, index
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
    buffers[bufnr] = { client = client, pending = {} }
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
        M.cancel(bufnr, "inline")
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
  -- keys only when the user asked for them (setup({ inline = { keys = {...} } })); the
  -- <Plug> maps are always there (plugin/localcode.lua)
  local keys = config.options.inline.keys or {}
  for action, lhs in pairs(keys) do
    if lhs and lhs ~= "" then
      vim.keymap.set("i", lhs, "<Plug>(localcode-" .. action .. ")",
        { buffer = bufnr, desc = "localcode: " .. action })
    end
  end
end

--- Map `lhs` (default "<Tab>") in insert mode to accept the ghost text when one is visible and
--- otherwise do what `lhs` did before: the user's own mapping (cmp, snippets) or the key itself.
function M.map_accept_or_fallback(lhs)
  lhs = lhs or "<Tab>"
  local previous = vim.fn.maparg(lhs, "i", false, true)
  if type(previous) ~= "table" or vim.tbl_isempty(previous) or previous.buffer == 1 then
    previous = nil
  end
  local function fallback()
    if not previous then
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(lhs, true, false, true), "n", false)
      return
    end
    local mode = previous.noremap == 1 and "n" or "m"
    local keys
    if previous.callback then
      local value = previous.callback()
      if previous.expr ~= 1 then
        return
      end
      keys = value
    else
      keys = previous.expr == 1 and vim.api.nvim_eval(previous.rhs) or previous.rhs
    end
    if type(keys) == "string" and keys ~= "" then
      vim.api.nvim_feedkeys(vim.api.nvim_replace_termcodes(keys, true, false, true), mode, false)
    end
  end
  vim.keymap.set("i", lhs, function()
    if M.visible() then
      M.accept()
    else
      fallback()
    end
  end, { desc = "localcode: accept the suggestion, else " .. (previous and (previous.desc or previous.rhs or "the previous mapping") or lhs) })
  return previous
end

M._buffers = buffers
return M
