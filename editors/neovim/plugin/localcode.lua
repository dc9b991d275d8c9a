-- Sourced at startup (lazy.nvim, packer and native packages all source plugin/): only the <Plug>
-- mappings, cheap and side-effect free. Nothing starts and no key is mapped until
-- require("localcode").setup() (or vim.lsp.enable("localcode") on 0.11+, which finds
-- lsp/localcode.lua on 'runtimepath'). Map keys to these yourself, see :help localcode-keys.
if vim.g.loaded_localcode then
  return
end
vim.g.loaded_localcode = true

local function inline()
  return require("localcode.inline")
end

local maps = {
  { "accept", function() inline().accept() end, "accept the ghost-text suggestion" },
  { "accept-word", function() inline().accept_part("word") end, "accept the next word of the suggestion" },
  { "accept-line", function() inline().accept_part("line") end, "accept the rest of the suggestion's line" },
  { "next", function() inline().cycle(nil, 1) end, "show the next suggestion" },
  { "prev", function() inline().cycle(nil, -1) end, "show the previous suggestion" },
  { "dismiss", function() inline().dismiss() end, "dismiss the suggestion" },
  { "toggle", function() inline().toggle() end, "turn ghost text on or off" },
  { "trigger", function() inline().trigger() end, "ask for a suggestion now" },
}
for _, map in ipairs(maps) do
  vim.keymap.set("i", "<Plug>(localcode-" .. map[1] .. ")", map[2], { desc = "localcode: " .. map[3] })
end
-- toggle and trigger make sense from normal mode too
vim.keymap.set("n", "<Plug>(localcode-toggle)", function() inline().toggle() end,
  { desc = "localcode: turn ghost text on or off" })
